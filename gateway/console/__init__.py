"""The web console (`/console/`) and `/_cardgate/health`: try a photo in a browser and see what
every dialect would answer for it.

    GET  /console/                 the page (static files in gateway/console/static, no build step)
    POST /_cardgate/console/read   raw image body; ?border_cut=1&card_no=1&border=1&copy=1&reshoot=1&quality=1&reveal=1
    GET  /_cardgate/console/snippets   each dialect's SDK snippet pointed at this gateway
    GET  /_cardgate/health         version, weights, dialects and their auth, queue, rate limits

Who may use it and how fast: gateway/console/access.py. The read: gateway/console/preview.py.
Nothing here names a vendor: each dialect says how its SDK calls it and what it answers.
"""
from __future__ import annotations

import importlib.resources
import logging
import time
from typing import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core.body import read_body
from gateway.config import Config
from gateway.console import access, health, preview
from core.errors import BodyTimeoutError, BodyTooLargeError

log = logging.getLogger("cardgate.console")

PAGE = "/console/"
# The files the page is made of: name -> media type. Only these are served (no path from the URL
# reaches the file system).
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "report.html": "text/html; charset=utf-8",
    "report.js": "text/javascript; charset=utf-8",
}
# The page's own files only: no inline script, nothing from elsewhere; images as data: URLs.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def static_file(name: str) -> bytes | None:
    if name not in STATIC:
        return None
    resource = importlib.resources.files("gateway.console") / "static" / name
    return resource.read_bytes() if resource.is_file() else None


def wants_page(request: Request) -> bool:
    """A browser opening the gateway's root: GET, asking for HTML, no query (no vendor's call)."""
    return (request.method == "GET" and not request.url.query
            and "text/html" in request.headers.get("accept", ""))


class ConsoleApp:
    """The console's routes over one Gateway (gateway/app.py)."""

    def __init__(self, gateway, config: Config, loopback: bool):
        self.gateway = gateway
        self.decision = access.decide(config.console, loopback)
        self.guard = access.Guard(config.console, gateway.clock)
        self.version = health.package_version()
        self.weights = health.weight_ids() if self.decision.on else {}  # hashed once, at start
        self.max_image_bytes = max((d.limits.max_image_bytes for d in gateway.dialects), default=1 << 20)
        self.body_timeout_s = config.server.body_timeout_s
        log.info("console %s: %s", "on at " + PAGE if self.decision.on else "off", self.decision.why)

    @property
    def on(self) -> bool:
        return self.decision.on

    def routes(self) -> list[Route]:
        if not self.on:
            return []
        return [
            Route("/_cardgate/health", self._guarded("/_cardgate/health", self.health), methods=["GET"]),
            Route("/_cardgate/console/read", self._guarded("/_cardgate/console/read", self.read), methods=["POST"]),
            Route("/_cardgate/console/snippets", self._guarded("/_cardgate/console/snippets", self.snippets), methods=["GET"]),
            Route("/console", lambda request: RedirectResponse(PAGE, status_code=308), methods=["GET"]),
            Route("/console/", self._guarded(PAGE, self.page), methods=["GET"]),
            Route("/console/{name}", self._guarded("/console/{name}", self.page), methods=["GET"]),
        ]

    def home(self, request: Request) -> Response | None:
        """A redirect to the page for a browser at `/`, else None (the dialects answer)."""
        if self.on and wants_page(request):
            return RedirectResponse(PAGE, status_code=303)
        return None

    def _guarded(self, route: str, handler: Callable):
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            response = self.guard.refusal(request)
            error = None
            if response is None:
                try:
                    response = await handler(request)
                except Exception as exc:  # a bug: the trace server side, without the request's body
                    log.error("console %s failed", route, exc_info=exc)
                    error = type(exc).__name__
                    response = JSONResponse({"error": "internal error"}, status_code=500)
            else:
                error = "rate_limited" if response.status_code == 429 else "unauthorized"
            response.headers.update(SECURITY_HEADERS)
            access.log_request(request, route, response, started, error)
            return response

        return endpoint

    async def page(self, request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        data = static_file(name)
        if data is None:
            return JSONResponse({"error": "not found", "path": request.url.path}, status_code=404)
        return Response(data, media_type=STATIC[name])

    async def health(self, request: Request) -> Response:
        return JSONResponse(health.health(self.gateway, self.weights, self.version))

    async def snippets(self, request: Request) -> Response:
        base_url = f"{request.url.scheme}://{request.headers.get('host') or request.url.netloc}"
        return JSONResponse({d.name: d.sdk_snippet(base_url) if hasattr(d, "sdk_snippet") else ""
                             for d in self.gateway.dialects})

    async def read(self, request: Request) -> Response:
        try:
            image = await read_body(request, self.max_image_bytes, timeout_s=self.body_timeout_s)
        except BodyTimeoutError:
            return JSONResponse({"error": "body_timeout", "message": f"no part of the photo arrived for {self.body_timeout_s:g} s"}, status_code=408)
        except BodyTooLargeError:
            return JSONResponse({"error": "too_large", "message": f"the largest photo any dialect takes is "
                                 f"{self.max_image_bytes} bytes"}, status_code=413)
        if not image:
            return JSONResponse({"error": "no_image", "message": "send the photo as the request body"}, status_code=400)
        query = dict(request.query_params)
        reveal = preview.flag(query, "reveal")
        result = await preview.preview(self.gateway, image, preview.asks_from(query), reveal, request.headers.get("host", ""))
        return JSONResponse(result)
