"""Read a request body while enforcing a byte limit, without buffering past it; parse a JSON,
urlencoded or multipart body for the dialects. Signatures are still checked over the raw
bytes (IncomingRequest.body), never over what these functions return."""
from __future__ import annotations

import asyncio
import codecs
import json
from typing import Any
from urllib.parse import unquote_to_bytes

import numpy as np
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from core.errors import BadJSONError, BodyTimeoutError, BodyTooLargeError

# Every dialect's JSON body is a flat object (hex nests one options object): anything
# deeper is an attack, refused before a recursive parser runs out of stack on it. The
# body's size is bounded before this, by each dialect's max_body_bytes (read_body).
MAX_JSON_DEPTH = 32

_BRACKET_STEPS = np.zeros(256, np.int8)  # each byte's step in nesting depth
_BRACKET_STEPS[[ord("["), ord("{")]] = 1
_BRACKET_STEPS[[ord("]"), ord("}")]] = -1


async def read_body(
    request: Request, max_bytes: int, *, timeout_s: float | None = None, waits: set[asyncio.Timeout] | None = None
) -> bytes:
    """The whole body, or BodyTooLargeError as soon as more than `max_bytes` arrive.

    A declared Content-Length above the limit is refused before reading anything;
    a chunked or lying body is cut off at the first chunk that crosses the limit.
    With `timeout_s`, BodyTimeoutError when no chunk arrives for that long: a slow
    client that keeps sending is waited for, one that stopped is not. A client gone
    mid-body is Starlette's ClientDisconnect. While the body is read, its deadline
    is in `waits` (when given): rescheduling it to now ends the read at once with
    BodyTimeoutError (a gateway at the end of its drain does).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(f"content-length {declared} > {max_bytes}")
    chunks: list[bytes] = []
    received = 0
    stream = request.stream()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(None) as deadline:  # one deadline, moved on at every chunk
            if waits is not None:
                waits.add(deadline)
            try:
                while True:
                    if timeout_s is not None:
                        deadline.reschedule(loop.time() + timeout_s)
                    try:
                        chunk = await anext(stream)
                    except StopAsyncIteration:
                        break
                    received += len(chunk)
                    if received > max_bytes:
                        raise BodyTooLargeError(f"body > {max_bytes} bytes")
                    chunks.append(chunk)
            finally:
                if waits is not None:
                    waits.discard(deadline)
    except TimeoutError:
        raise BodyTimeoutError(f"no body byte for {timeout_s} s after {received} bytes") from None
    return b"".join(chunks)


def json_too_deep(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays and objects in `body` nest deeper than `max_depth` (brackets in strings
    do not count). Vectorised and without recursion: linear in the body's size, whatever it holds."""
    if body.count(b"[") + body.count(b"{") <= max_depth:  # cannot nest deeper than it opens
        return False
    chars = np.frombuffer(body, np.uint8)
    quotes = chars == ord('"')
    if b"\\" in body:  # a quote after an odd run of backslashes is escaped: it neither opens nor closes
        backslashes = chars == ord("\\")
        seen = np.cumsum(backslashes, dtype=np.int32)
        run = seen - np.maximum.accumulate(np.where(backslashes, 0, seen))  # the run ending here
        quotes[1:] &= run[:-1] % 2 == 0
    in_string = np.cumsum(quotes, dtype=np.int32) % 2 == 1
    steps = _BRACKET_STEPS[chars]
    steps[in_string] = 0
    return bool(np.cumsum(steps, dtype=np.int32).max() > max_depth)


def parse_json(body: bytes, loads=json.loads) -> Any:
    """The JSON value of `body` read by `loads` (json.loads, or a faster parser with its
    semantics); BadJSONError when it is not JSON or nests deeper than MAX_JSON_DEPTH."""
    if json_too_deep(body):
        raise BadJSONError(f"nested deeper than {MAX_JSON_DEPTH}")
    try:
        return loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and msgspec's DecodeError are ValueErrors
        raise BadJSONError(f"{type(exc).__name__}: {exc}"[:200]) from None


def parse_form(body: bytes) -> list[tuple[str, bytes]]:
    """An application/x-www-form-urlencoded body -> [(name, value bytes)], in order, as
    parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1") gives them,
    but several times faster on an image: parse_qsl unescapes in pure Python, 1-2 ms for the
    thousands of %2B/%2F/%3D in a 1 MP photo's base64."""
    out = []
    for pair in body.split(b"&"):
        if pair:
            name, _, value = pair.partition(b"=")
            out.append((_unquote_plus(name).decode("latin-1"), _unquote_plus(value)))
    return out


def _unquote_plus(raw: bytes) -> bytes:
    """%XX and + unescaped. %XX becomes \\xXX for the C decoder that pickle also uses for
    escaped bytes (codecs.escape_decode), with any backslash doubled first so that only those
    escapes are live; a malformed escape (%zz, a % at the end) makes it raise, and then the
    standard library's unquoting keeps such text as it is."""
    raw = raw.replace(b"+", b" ")
    if b"%" not in raw:
        return raw
    try:
        return codecs.escape_decode(raw.replace(b"\\", b"\\\\").replace(b"%", b"\\x"))[0]
    except ValueError:
        return unquote_to_bytes(raw)


class BadFormError(ValueError):
    """A multipart body that cannot be parsed. Each dialect that reads one answers it with its own
    code where it calls parse_multipart (it is not a shared GatewayError: only those dialects see it)."""


class TooManyPartsError(BadFormError):
    """A multipart body with more parts than the dialect reads."""


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """ "multipart/form-data; boundary=x" -> ("multipart/form-data", {"boundary": "x"}), the type lower-cased."""
    kind, params = parse_options_header(content_type or "")
    return kind.decode("latin-1").lower(), {k.decode("latin-1"): v.decode("latin-1") for k, v in params.items()}


def parse_multipart(
    body: bytes,
    content_type: str | None,
    *,
    max_parts: int | None = None,
    max_header_count: int = 8,
    max_header_size: int = 4224,
) -> list[tuple[str, bytes]]:
    """(name, value bytes) of every complete part of a multipart/form-data body, in order.

    The name is the `name` parameter of Content-Disposition whatever its type, so the
    `Content-Disposition: file; name=...` parts of old SDKs count like `form-data` ones;
    a part without one is left out. BadFormError for a body python-multipart cannot
    read or without a boundary; TooManyPartsError past `max_parts` parts."""
    boundary = parse_options_header(content_type or "")[1].get(b"boundary")
    if not boundary:
        raise BadFormError("multipart without boundary")
    parts: list[tuple[str, bytes]] = []
    begun = 0
    headers: dict[bytes, bytes] = {}
    field, value, data = bytearray(), bytearray(), bytearray()

    def on_part_begin() -> None:
        nonlocal begun
        begun += 1
        if max_parts is not None and begun > max_parts:
            raise TooManyPartsError(f"more than {max_parts} parts")
        headers.clear()
        data.clear()

    def on_header_field(chunk: bytes, start: int, end: int) -> None:
        field.extend(chunk[start:end])

    def on_header_value(chunk: bytes, start: int, end: int) -> None:
        value.extend(chunk[start:end])

    def on_header_end() -> None:
        headers[bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        data.extend(chunk[start:end])

    def on_part_end() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name")
        if name is not None:
            parts.append((name.decode("utf-8", errors="replace"), bytes(data)))

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary, callbacks, max_header_count=max_header_count, max_header_size=max_header_size)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except BadFormError:
        raise
    except Exception as exc:  # python-multipart raises its own error types for malformed bodies
        raise BadFormError(f"malformed multipart: {type(exc).__name__}") from None
    return parts
