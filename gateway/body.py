"""Read a request body while enforcing a byte limit, without buffering past it; parse a JSON or form body."""
from __future__ import annotations

import codecs
import json
from typing import Any
from urllib.parse import unquote_to_bytes

import numpy as np
from starlette.requests import Request

from gateway.errors import BadJSONError, BodyTooLargeError

# Every dialect's JSON body is a flat object (hex nests one options object): anything
# deeper is an attack, refused before a recursive parser runs out of stack on it. The
# body's size is bounded before this, by each dialect's max_body_bytes (read_body).
MAX_JSON_DEPTH = 32

_BRACKET_STEPS = np.zeros(256, np.int8)  # each byte's step in nesting depth
_BRACKET_STEPS[[ord("["), ord("{")]] = 1
_BRACKET_STEPS[[ord("]"), ord("}")]] = -1


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
