"""Send a WireRequest with httpx and return a Reply: never raises, never follows redirects."""
from __future__ import annotations

import asyncio
import time

import httpx

from core.wire import Reply, WireRequest

# Headers of an upstream answer that make no sense relayed as they are (hop-by-hop, or recomputed).
NOT_RELAYED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
                         "date", "server", "upgrade", "proxy-authenticate", "trailer", "te"})


async def send(client: httpx.AsyncClient, wire: WireRequest, timeout_s: float, max_bytes: int = 16 << 20) -> Reply:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000.0, 1)

    try:
        async with asyncio.timeout(timeout_s):  # the whole exchange, not each read
            # timeout_s for each phase too: the client's own default (httpx's 5 s a read) is not the bound.
            request = client.build_request(wire.method, wire.url, headers=wire.headers, content=wire.body,
                                           timeout=httpx.Timeout(timeout_s))
            response = await client.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        return Reply(status=None, latency_ms=elapsed(), failure="oversize answer")
            finally:
                await response.aclose()
    except (httpx.TimeoutException, TimeoutError):
        return Reply(status=None, latency_ms=elapsed(), failure="timeout")
    except httpx.TransportError:
        return Reply(status=None, latency_ms=elapsed(), failure="connect")
    except Exception as exc:  # a bad URL or an httpx bug must not escape into the request flow
        return Reply(status=None, latency_ms=elapsed(), failure=f"error: {type(exc).__name__}")
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in NOT_RELAYED]
    return Reply(
        status=response.status_code,
        content_type=response.headers.get("content-type", ""),
        body=bytes(body),
        headers=headers,
        latency_ms=elapsed(),
    )
