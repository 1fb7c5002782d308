"""The Starlette application: mounts every dialect and drives the request flow.

For each request to a dialect route (see adapters/base.py):

    read the body (dialect's max_body_bytes, enforced while streaming)
    authenticate -> parse -> image bytes (inline or fetched) -> engine (worker pool)
    -> dialect.render, or dialect.render_error for any exception on the way

then one JSON access line is logged and the metrics are updated (gateway/metrics.py).
Nothing here names a vendor.

Under load and at shutdown: the engine queue is bounded (gateway/runner.py), a
credential may be rate limited (gateway/ratelimit.py), and once `begin_drain()`
is called new requests are refused with ShuttingDownError (each dialect's own
retryable error) while those in flight finish; `drain()` waits for them.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters import load_dialects
from adapters.base import Dialect, VendorError
from core.request import EngineCall, IncomingRequest
from core.body import read_body
from gateway.config import Config, with_defaults
from gateway.console import ConsoleApp
from engine.errors import EngineError
from core.errors import BodyTimeoutError, GatewayError, RouteNotFoundError, ShuttingDownError
from gateway.images import Resolver, check_image, fetch_image, fetch_transport, image_dimensions
from gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.metrics import GatewayMetrics
from gateway.migrate.counters import render_prometheus as render_shadow_metrics
from gateway.migrate.shadow import build_shadow
from gateway.ratelimit import RateLimiter
from core.replay import open_replay_store
from gateway.runner import EngineRunner

# Failures that are part of normal operation; anything else is logged with its trace.
EXPECTED_ERRORS = (VendorError, GatewayError, EngineError)
# A client gone before its body was in is counted and logged under nginx's status for it, never answered.
CLIENT_CLOSED_STATUS = 499
CLIENT_CLOSED_CODE = "client_disconnected"

access_log = logging.getLogger("cardgate.access")
log = logging.getLogger("cardgate.gateway")


class Gateway:
    """Everything the endpoints share: dialects, engine runner, HTTP client, clock."""

    def __init__(
        self,
        config: Config,
        engine: Any,
        dialects: list[Dialect],
        clock: Callable[[], float],
        http_client: httpx.AsyncClient | None,
        resolver: Resolver | None,
    ):
        self.config = config
        self.engine = engine
        self.dialects = dialects
        self.clock = clock
        self.resolver = resolver
        self.allow_private = config.fetch.allow_private
        self.runner = EngineRunner(config.engine.threads, config.engine.queue_size, config.engine.nice)
        self.metrics = GatewayMetrics(self.runner)
        self.rate_limiter = RateLimiter(config.rate_limits, clock)
        self.server_timing = config.metrics.server_timing
        self.draining = False
        self._idle = asyncio.Event()  # set whenever no dialect request is in flight
        self._idle.set()
        self._body_waits: set[asyncio.Timeout] = set()  # the deadlines of bodies being read (read_body)
        self._http_client = http_client
        self._owns_client = http_client is None
        # Shadow mode ([<dialect>.shadow] tables): None when no dialect is shadowed.
        self.shadow = build_shadow(config, [d.name for d in dialects], clock)
        # Single-use signatures and nonces, seen by every worker (a dialect keeps its own in-memory
        # store when it is used without a gateway).
        self.replay = open_replay_store(config.replay)  # the SQLite file, or Redis ([replay] redis_url)
        for dialect in dialects:
            attach = getattr(dialect, "use_replay_store", None)
            if attach is not None:
                attach(self.replay)
        # Unknown paths are read under the largest limit any dialect allows.
        self.max_body_bytes = max((d.limits.max_body_bytes for d in dialects), default=1 << 20)

    def body_limit(self, dialect: Dialect) -> int:
        """The dialect's own body limit, capped by [limits] max_body_bytes when that is set."""
        cap = self.config.limits.max_body_bytes
        return min(dialect.limits.max_body_bytes, cap) if cap else dialect.limits.max_body_bytes

    @property
    def http_client(self) -> httpx.AsyncClient:
        # Created on first use, inside the running loop (also works without lifespan, e.g. TestClient).
        if self._http_client is None:
            self._http_client = httpx.AsyncClient(
                transport=fetch_transport(),
                follow_redirects=False,
                headers={"user-agent": self.config.fetch.user_agent},
            )
        return self._http_client

    # --- graceful shutdown ----------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.engine is not None and bool(getattr(self.engine, "ready", True)) and not self.draining

    def begin_drain(self) -> None:
        """From now on /readyz answers 503 and new dialect requests get ShuttingDownError."""
        self.draining = True
        self.metrics.draining = True

    async def drain(self, timeout: float) -> bool:
        """begin_drain(), then wait up to `timeout` s for in-flight requests; True when none is left.

        Requests still reading their bodies near the end (a client stalled or trickling bytes)
        are given up a moment before it and answered with ShuttingDownError, so that they get
        their vendor's retryable error before the server closes what is left."""
        self.begin_drain()
        last_moment = min(1.0, timeout / 10)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout - last_moment)
            return True
        except asyncio.TimeoutError:
            pass
        now = asyncio.get_running_loop().time()
        for deadline in list(self._body_waits):
            deadline.reschedule(now)
        try:
            await asyncio.wait_for(self._idle.wait(), last_moment)
            return True
        except asyncio.TimeoutError:
            return self.metrics.in_flight == 0

    def _request_started(self) -> None:
        self.metrics.request_started()
        self._idle.clear()

    def _request_finished(self) -> None:
        self.metrics.request_finished()
        if self.metrics.in_flight == 0:
            self._idle.set()

    async def close(self) -> None:
        if self._owns_client and self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None
        if self.shadow is not None:
            await self.shadow.close()
        self.runner.shutdown()
        self.replay.close()

    # --- the request flow -------------------------------------------------

    async def handle(self, request: Request, dialect: Dialect, route: str, allowed: set[str] | None) -> Response | None:
        """The response to send; None when the client is gone and nothing is to be sent."""
        started = time.perf_counter()
        self._request_started()
        try:
            return await self._handle(request, dialect, route, allowed, started)
        finally:
            self._request_finished()

    async def _handle(self, request: Request, dialect: Dialect, route: str, allowed: set[str] | None, started: float) -> Response | None:
        request_id = dialect.new_request_id()
        incoming: IncomingRequest | None = None
        call: EngineCall | None = None
        error: BaseException | None = None
        stages: dict[str, float] = {}  # seconds: fetch, queue, engine, render
        try:
            if allowed is not None and request.method not in allowed:
                incoming = incoming_request(request, b"")
                raise RouteNotFoundError(f"{request.method} {request.url.path}")
            if self.draining:
                incoming = incoming_request(request, b"")
                raise ShuttingDownError("draining")
            try:
                body = await read_body(request, self.body_limit(dialect), timeout_s=self.config.server.body_timeout_s,
                                       waits=self._body_waits)
            except BodyTimeoutError:
                if self.draining:  # given up by drain(), or stalled while draining: another instance will answer
                    raise ShuttingDownError("draining: body given up") from None
                raise
            incoming = incoming_request(request, body)
            credential = dialect.authenticate(incoming, self.clock())
            self.rate_limiter.check(dialect.name, credential)

            async def answer_locally() -> LocalAnswer:
                return await self.answer_locally(dialect, incoming, credential, request_id, started, stages)

            direct = getattr(dialect, "answer_without_image", None)  # e.g. a token endpoint
            response = direct(incoming, credential, request_id, self.clock()) if direct is not None else None
            if response is not None:
                local = None
            elif self.shadow is not None and self.shadow.covers(dialect.name):  # only authenticated requests
                response, local = await self.shadow.serve(dialect, incoming, request_id, answer_locally)
            else:
                local = await answer_locally()
                response = local.response
            if local is not None:
                call, error = local.call, local.error
        except ClientDisconnect as exc:  # the client's doing, not a failure here: no trace, no 5xx
            log.info("request %s (%s): client disconnected mid-body", request_id, dialect.name,
                     extra={"fields": {"request_id": request_id, "dialect": dialect.name}})
            gone = Response(status_code=CLIENT_CLOSED_STATUS)  # only counted and logged, never sent
            self.record(dialect.name, gone, CLIENT_CLOSED_CODE, stages, started)
            self.log_access(dialect.name, route, request, gone, request_id, exc, None, started, CLIENT_CLOSED_CODE)
            return None
        except Exception as exc:  # every failure becomes the vendor's own error
            if not isinstance(exc, EXPECTED_ERRORS):  # a bug somewhere: keep the trace, server side only
                log.error("request %s (%s) failed unexpectedly", request_id, dialect.name, exc_info=exc,
                          extra={"fields": {"request_id": request_id, "dialect": dialect.name}})
            response = safe_render_error(dialect, exc, request_id, incoming)
            error = detached(exc)
        code = vendor_code(dialect, error)
        self.record(dialect.name, response, code, stages, started)
        self.log_access(dialect.name, route, request, response, request_id, error, call, started, code)
        return response

    async def answer_locally(self, dialect, incoming, credential, request_id, started, stages) -> "LocalAnswer":
        """parse -> image -> engine -> render; any failure rendered as the vendor's own error."""
        answer = LocalAnswer()
        try:
            answer.call = call = dialect.parse(incoming)
            if call.credential is None:
                call.credential = credential
            answer.image = image = await self.image_bytes(call, dialect, stages)
            options = self.options_for(call, dialect)
            reading = await self.runner.run(self.engine.read, image, options, stages=stages)
            self.metrics.observe_engine_timings(getattr(reading, "timings_ms", None))
            render_started = time.perf_counter()
            elapsed_ms = (render_started - started) * 1000.0
            answer.response = dialect.render(call, reading, request_id, elapsed_ms)
            stages["render"] = time.perf_counter() - render_started
        except Exception as exc:  # every failure becomes the vendor's own error
            if not isinstance(exc, EXPECTED_ERRORS):  # a bug somewhere: keep the trace, server side only
                log.error("request %s (%s) failed unexpectedly", request_id, dialect.name, exc_info=exc,
                          extra={"fields": {"request_id": request_id, "dialect": dialect.name}})
            answer.response = safe_render_error(dialect, exc, request_id, incoming)
            answer.error = detached(exc)
        return answer

    def record(self, dialect_name: str, response: Response, code: str, stages: dict[str, float], started: float) -> None:
        """Metrics for one answered request, and the Server-Timing header when enabled."""
        total = time.perf_counter() - started
        for stage, seconds in stages.items():
            self.metrics.observe_stage(stage, seconds)
        # The server's own cost: what is left once waiting on the network, the queue and the engine is taken out.
        overhead = total - stages.get("fetch", 0.0) - stages.get("queue", 0.0) - stages.get("engine", 0.0)
        self.metrics.observe_request(dialect_name, response.status_code, code, total, overhead if "engine" in stages else None)
        if self.server_timing:
            parts = [f"{name};dur={seconds * 1000.0:.2f}" for name, seconds in stages.items()]
            parts.append(f"app;dur={total * 1000.0:.2f}")
            response.headers["server-timing"] = ", ".join(parts)

    async def image_bytes(self, call: EngineCall, dialect: Dialect, stages: dict[str, float] | None = None) -> bytes:
        limits = dialect.limits
        if call.image.data is not None:
            data = call.image.data
        elif call.image.url:
            fetch_started = time.perf_counter()
            data = await fetch_image(
                call.image.url, limits, self.allow_private, self.http_client, resolver=self.resolver
            )
            if stages is not None:
                stages["fetch"] = time.perf_counter() - fetch_started
        else:  # a dialect bug: parse() must refuse a request with no image
            raise RuntimeError("dialect returned an EngineCall without an image")
        check_image(data, limits)
        if limits.max_side:
            size = image_dimensions(data)
            if size and max(size) > limits.max_side:
                from engine.errors import ImageTooLargeError

                raise ImageTooLargeError(f"side {max(size)} > {limits.max_side}")
        return data

    def options_for(self, call: EngineCall, dialect: Dialect):
        """The dialect's options, tightened by its limits (the stricter of the two wins) and
        with the configured blur floor ([engine] blur_floor: quality below it is the vendor's
        blurred-image error)."""
        limits = dialect.limits
        options = call.options
        changes = {}
        blur_floor = self.config.engine.blur_floor
        if blur_floor > options.blur_floor:
            changes["blur_floor"] = blur_floor
        if limits.max_pixels and limits.max_pixels < options.max_pixels:
            changes["max_pixels"] = limits.max_pixels
        if limits.min_side > options.min_side:
            changes["min_side"] = limits.min_side
        return msgspec.structs.replace(options, **changes) if changes else options

    async def not_found(self, request: Request) -> Response:
        """An unknown path: answered by the dialect that owns it, else plain JSON 404."""
        path = request.url.path
        for dialect in self.dialects:
            if dialect.owns_path(path):
                started = time.perf_counter()
                request_id = dialect.new_request_id()
                exc = RouteNotFoundError(f"{request.method} {path}")
                response = safe_render_error(dialect, exc, request_id, incoming_request(request, b""))
                code = vendor_code(dialect, exc)
                self.record(dialect.name, response, code, {}, started)
                self.log_access(dialect.name, "<unknown>", request, response, request_id, exc, None, started, code)
                return response
        started = time.perf_counter()
        response = JSONResponse({"error": "not found", "path": path}, status_code=404)
        self.metrics.observe_request("-", 404, "not_found", time.perf_counter() - started, None)
        self.log_access("-", "<unknown>", request, response, "", None, None, started)
        return response

    def log_access(self, dialect_name, route, request, response, request_id, error, call, started, code=None) -> None:
        """One line per request, its fields as the record's `fields` (gateway/logs.py makes them
        keys of the JSON line). Never card numbers, image bytes or secrets."""
        if not access_log.isEnabledFor(logging.INFO):
            return
        record = {
            "request_id": request_id,
            "dialect": dialect_name,
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "error": error_label(error),
            "code": code if error is not None else None,
            "latency_ms": round((time.perf_counter() - started) * 1000.0, 1),
            "client": request.client.host if request.client else "",
            "pid": os.getpid(),  # which worker process answered
        }
        if call is not None and call.credential:
            record["credential"] = call.credential
        access_log.info("%s %s %s", request.method, route, response.status_code, extra={"fields": record})


@dataclass
class LocalAnswer:
    """The engine's answer to one request: the response, and what led to it (shadow mode compares it)."""

    response: Response | None = None
    call: EngineCall | None = None
    error: BaseException | None = None
    image: bytes | None = None  # the bytes the engine read


def vendor_code(dialect: Dialect, error: BaseException | None) -> str:
    """The vendor's own error code for `error` ("ok" for none), for metrics and logs: the
    dialect's error_code(exc); the neutral error name should that fail."""
    if error is None:
        return "ok"
    try:
        return str(dialect.error_code(error))
    except Exception:  # metrics must never break a request
        return error_label(error) or "error"


def detached(exc: BaseException) -> BaseException:
    """`exc` without its traceback and the exceptions it was raised from, to be kept past its
    `except` block (in a local, a LocalAnswer). Kept whole it would make a reference cycle: the
    traceback holds the frames it went through, with every local of theirs (the body, the image),
    and one of those frames holds `exc` again; only the cycle collector frees that, long after
    the answer is sent. `raise ... from None` is no help: it hides __context__ but keeps it. Call
    it once the exception has been logged and rendered."""
    exc.__traceback__ = exc.__context__ = exc.__cause__ = None
    return exc


def error_label(error: BaseException | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, VendorError):
        return error.code
    return type(error).__name__


def safe_render_error(dialect: Dialect, exc: Exception, request_id: str, req: IncomingRequest | None) -> Response:
    """dialect.render_error, with a last-resort answer should the dialect itself fail."""
    try:
        return dialect.render_error(exc, request_id, req)
    except Exception:
        log.exception("dialect %s failed to render %s", dialect.name, type(exc).__name__)
        return JSONResponse({"error": "internal error", "request_id": request_id}, status_code=500)


def incoming_request(request: Request, body: bytes) -> IncomingRequest:
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    # ASGI servers hand over header names lower-cased and values as bytes as sent.
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    return IncomingRequest(
        method=request.method,
        path=scope["path"],
        raw_path=raw_path.split(b"?", 1)[0],
        query_string=scope.get("query_string", b""),
        headers=headers,
        body=body,
        path_params={k: str(v) for k, v in request.path_params.items()},
        client_host=request.client.host if request.client else "",
    )


def create_app(
    config: Config | dict,
    engine: Any,
    *,
    clock: Callable[[], float] = time.time,
    allow_unsigned: bool = True,
    dialects: list[Dialect] | None = None,
    http_client: httpx.AsyncClient | None = None,
    resolver: Resolver | None = None,
    loopback: bool = True,
) -> Starlette:
    """The gateway app.

    `config` is a Config, or the parsed TOML as a dict (checked through the same
    Structs; missing keys take defaults); `engine` has
    `read(image_bytes, ReadOptions) -> CardReading`; `dialects` defaults to every
    available adapter created from `config`. `http_client` and `resolver` replace
    the image fetcher's httpx client and DNS resolver (tests). `loopback`: the server is bound
    to loopback only (the console's default access, gateway/console/access.py).
    """
    config = with_defaults(config)
    if dialects is None:
        dialects = load_dialects(config, allow_unsigned)
    gateway = Gateway(config, engine, dialects, clock, http_client, resolver)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = gateway.ready
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        text = gateway.metrics.render()
        if gateway.shadow is not None:
            text += render_shadow_metrics(gateway.shadow.counters)
        return Response(text, media_type=METRICS_CONTENT_TYPE)

    routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
    if config.metrics.enabled:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    console = ConsoleApp(gateway, config, loopback)
    routes += console.routes()
    served: dict[str, list[tuple[Dialect, list[str]]]] = {}  # path -> its dialects, in dialect order
    for dialect in dialects:
        for path, methods in dialect.routes():
            served.setdefault(path, []).append((dialect, methods))
    for path, owners in served.items():
        home = console.home if path == "/" else None  # a browser at the root is shown the console
        routes.append(Route(path, _endpoint(gateway, owners, path, home), name=":".join(d.name for d, _ in owners) + f":{path}"))
    routes.append(Route("/{unknown_path:path}", _Endpoint(gateway.not_found)))

    @asynccontextmanager
    async def lifespan(app):
        yield
        await gateway.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    return app


class _Endpoint:
    """A bare ASGI endpoint: Starlette routes it for every method, so a wrong
    method is answered in the dialect's own "not found" shape, not a bare 405."""

    def __init__(self, handler: Callable[[Request], Any]):
        self.handler = handler

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope, receive, send)
        response = await self.handler(request)
        if response is not None:  # None: the client is gone
            await response(scope, receive, send)


def _endpoint(gateway: Gateway, owners: list[tuple[Dialect, list[str]]], path: str,
              home: Callable[[Request], Response | None] | None = None) -> _Endpoint:
    """One path's endpoint. Where several dialects serve the path (two RPC-style APIs may
    both live at `POST /`), the first whose `claims(method, headers, query)` says yes
    answers; a request no dialect claims goes to the first owner without a `claims` method.
    `home`, when given, may answer first (a browser opening `/` is sent to the console)."""
    choices = [(dialect, {m.upper() for m in methods} if methods else None) for dialect, methods in owners]
    claimants = [choice for choice in choices if getattr(choice[0], "claims", None) is not None]
    default = next((choice for choice in choices if choice not in claimants), choices[0])

    def pick(request: Request) -> tuple[Dialect, set[str] | None]:
        for choice in claimants:
            if len(choices) == 1 or choice[0].claims(request.method, request.headers, request.url.query):
                return choice
        return default

    async def handler(request: Request) -> Response | None:
        redirect = home(request) if home is not None else None
        if redirect is not None:
            return redirect
        dialect, allowed = pick(request)
        return await gateway.handle(request, dialect, path, allowed)

    return _Endpoint(handler)
