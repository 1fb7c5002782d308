"""Shadow mode: each request is answered by one side and mirrored to the other.

answer = "local":    the engine answers; the request, re-signed with the
                     upstream's credentials, is mirrored to the upstream.
answer = "upstream": the upstream answers (status, body and content type
                     relayed: the gateway is a proxy); the engine's reading is
                     the mirror. When nothing comes back from the upstream (or
                     nothing readable in its dialect), the engine answers
                     (on_upstream_failure = "local") or the dialect's internal
                     error does ("error").

Only requests that passed the dialect's own authentication are mirrored or
proxied: the upstream's credentials are never lent to an unknown caller.
Mirrored work goes through a bounded queue (MirrorQueue): the client never
waits for it, and a full queue drops the job and counts it. Both answers are
read with the dialect's client module (same wire format on both sides),
compared field by field, counted and recorded with numbers masked.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Awaitable, Callable

import httpx
from starlette.responses import Response

from adapters.base import Dialect
from core.request import IncomingRequest
from adapters import migrate as clients
from gateway.migrate.counters import ShadowCounters
from gateway.migrate.fields import comparison_record
from gateway.migrate.mirror import MirrorQueue
from gateway.migrate.records import open_recorder
from gateway.migrate.settings import DialectShadow, ShadowOptions, read_dialect, read_options
from gateway.migrate.upstream import send
from core.wire import Outcome, Reply

log = logging.getLogger("cardgate.shadow")

LOCAL, UPSTREAM = "local", "upstream"


class UpstreamUnavailable(Exception):
    """The answering upstream gave nothing back; each dialect renders it as its internal error."""


def reply_from_response(response: Response, latency_ms: float) -> Reply:
    """Our own rendered answer, read like any other side's."""
    return Reply(
        status=response.status_code,
        content_type=response.headers.get("content-type", ""),
        body=bytes(getattr(response, "body", b"") or b""),
        latency_ms=round(latency_ms, 1),
    )


def relay(reply: Reply) -> Response:
    """The upstream's answer as ours: its status, body and headers, content type exactly as sent."""
    return Response(content=reply.body, status_code=reply.status or 502, headers=dict(reply.headers))


def read_outcome(client, reply: Reply) -> Outcome:
    if reply.failure:
        return Outcome(failure=reply.failure)
    try:
        return client.outcome(reply)
    except Exception as exc:  # a parser bug must not lose the comparison
        return Outcome(failure=f"unreadable answer ({type(exc).__name__})")


_IMAGE_EXTS = ((b"\xff\xd8", ".jpg"), (b"\x89PNG", ".png"), (b"BM", ".bmp"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


class Shadow:
    def __init__(
        self,
        options: ShadowOptions,
        dialects: dict[str, DialectShadow],
        clock: Callable[[], float] = time.time,
        http_client: httpx.AsyncClient | None = None,
    ):
        self.options = options
        self.dialects = dialects
        self.clock = clock
        self.counters = ShadowCounters()
        self.queue = MirrorQueue(options.queue_size, options.workers)
        self.recorder = open_recorder(options.records) if options.records else None
        self._http_client = http_client
        self._owns_client = http_client is None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def covers(self, dialect_name: str) -> bool:
        return dialect_name in self.dialects

    @property
    def http_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._owns_client and (self._http_client is None or self._client_loop is not loop):
            # Our own client, separate from the image fetcher's: it talks only to configured upstreams.
            self._http_client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
            self._client_loop = loop
        return self._http_client

    async def close(self) -> None:
        await self.queue.close()
        if self._owns_client and self._http_client is not None and self._client_loop is asyncio.get_running_loop():
            await self._http_client.aclose()
        self._http_client = None
        if self.recorder is not None:
            self.recorder.close()

    # --- the request flow ----------------------------------------------------

    async def serve(
        self,
        dialect: Dialect,
        incoming: IncomingRequest,
        request_id: str,
        answer_locally: Callable[[], Awaitable[Any]],
    ) -> tuple[Response, Any]:
        """(the client's response, the local answer when the engine answered it, else None).

        `answer_locally()` runs the gateway's own flow and returns an object with
        `.response` and `.image` (the bytes the engine read, or None).
        """
        settings = self.dialects[dialect.name]
        client = clients.client_for(dialect.name)
        if settings.answer == LOCAL:
            local, local_ms = await self._timed(answer_locally)
            self._submit(dialect.name, lambda: self._mirror_upstream(settings, client, incoming, request_id, local, local_ms))
            return local.response, local

        reply = await self._call_upstream(settings, client, incoming)
        failure = reply.failure or read_outcome(client, reply).failure
        if failure is None:
            self._submit(dialect.name, lambda: self._mirror_local(settings, client, reply, request_id, answer_locally))
            return relay(reply), None

        # Nothing usable came back from the answering upstream (no answer, or not one in its dialect).
        self.counters.count_fallback(dialect.name)
        log.warning("shadow %s %s: upstream failed (%s)", dialect.name, request_id, failure)
        if settings.on_upstream_failure == "error":
            response = dialect.render_error(UpstreamUnavailable(failure), request_id, incoming)
            return response, None
        local, local_ms = await self._timed(answer_locally)
        self._record(settings, client, request_id, reply, local, local_ms, answered_by="local (upstream failed)")
        return local.response, local

    @staticmethod
    async def _timed(answer_locally) -> tuple[Any, float]:
        started = time.perf_counter()
        local = await answer_locally()
        return local, (time.perf_counter() - started) * 1000.0

    def _submit(self, dialect_name: str, job) -> None:
        if not self.queue.submit(job):
            self.counters.count_drop(dialect_name)

    async def _call_upstream(self, settings: DialectShadow, client, incoming: IncomingRequest) -> Reply:
        try:
            wire = client.resign(incoming, settings.upstream, settings.credentials, self.clock())
        except Exception as exc:  # the request cannot be rebuilt for the upstream (e.g. malformed body)
            return Reply(status=None, failure=f"build: {type(exc).__name__}")
        return await send(self.http_client, wire, settings.timeout_s)

    # --- mirrored jobs ---------------------------------------------------------

    async def _mirror_upstream(self, settings, client, incoming, request_id, local, local_ms) -> None:
        reply = await self._call_upstream(settings, client, incoming)
        self._record(settings, client, request_id, reply, local, local_ms, answered_by=LOCAL)

    async def _mirror_local(self, settings, client, reply, request_id, answer_locally) -> None:
        local, local_ms = await self._timed(answer_locally)
        self._record(settings, client, request_id, reply, local, local_ms, answered_by=UPSTREAM)

    def _record(self, settings, client, request_id, upstream_reply, local, local_ms, answered_by) -> None:
        local_reply = reply_from_response(local.response, local_ms)
        extra = {"answered_by": answered_by}
        image_name = self._keep_image(request_id, getattr(local, "image", None))
        if image_name:
            extra["image"] = image_name
        record = comparison_record(
            settings.dialect,
            "shadow",
            request_id,
            [(UPSTREAM, read_outcome(client, upstream_reply), upstream_reply), (LOCAL, read_outcome(client, local_reply), local_reply)],
            now=self.clock(),
            **extra,
        )
        self.counters.count_record(record)
        if record["agree"] is False:
            differ = [name for name, agree in record["fields"].items() if agree is False]
            log.info("shadow %s %s: sides differ on %s", settings.dialect, request_id, ", ".join(differ))
        if self.recorder is not None:
            try:
                self.recorder.write(record)
            except Exception:
                log.exception("shadow: cannot write the record of %s", request_id)

    def _keep_image(self, request_id: str, image: bytes | None) -> str | None:
        """Only when [shadow] images_dir is set: the image goes there, its file name into the record."""
        if not self.options.images_dir or not image:
            return None
        ext = next((e for magic, e in _IMAGE_EXTS if image.startswith(magic)), ".bin")
        name = "".join(ch for ch in request_id if ch.isalnum() or ch in "-_.,") + ext
        try:
            os.makedirs(self.options.images_dir, exist_ok=True)
            with open(os.path.join(self.options.images_dir, name), "wb") as fh:
                fh.write(image)
        except OSError:
            log.exception("shadow: cannot keep the image of %s", request_id)
            return None
        return name


def build_shadow(config, dialect_names: list[str], clock: Callable[[], float] = time.time,
                 http_client: httpx.AsyncClient | None = None) -> Shadow | None:
    """The Shadow for every loaded dialect with a `[<dialect>.shadow]` table; None when there is none."""
    dialects = {}
    for name in dialect_names:
        settings = read_dialect(config, name)
        if settings is not None:
            dialects[name] = settings
    if not dialects:
        return None
    return Shadow(read_options(config), dialects, clock, http_client)
