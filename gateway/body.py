"""Read a request body while enforcing a byte limit, without buffering past it."""
from __future__ import annotations

from starlette.requests import Request

from gateway.errors import BodyTooLargeError


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, or BodyTooLargeError as soon as more than `max_bytes` arrive.

    A declared Content-Length above the limit is refused before reading anything;
    a chunked or lying body is cut off at the first chunk that crosses the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(f"content-length {declared} > {max_bytes}")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise BodyTooLargeError(f"body > {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
