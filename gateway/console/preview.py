"""One console read: the engine's reading of a photo, and what every dialect would answer for it.

The photo is read once, through the gateway's engine runner (so the queue's bounds apply), with
every check and output switched on. Then, for each dialect, the request its vendor's SDK would
send (Dialect.console_request) goes through that dialect's own parse(), the gateway's own image
checks and the dialect's own render() or render_error(): no response is made a second time here.
Only the signature check is skipped, for this in-process call. Each dialect renders the reading
as its own options would have had it (`reading_as_asked`): warnings it did not ask for dropped,
images and quality only when asked, its blur floor applied.

Image bytes are held in memory for the request only: never stored, never logged. The number is
masked (first 6 + last 4) everywhere in the answer, the dialects' bodies included, unless the
caller asks to reveal it.
"""
from __future__ import annotations

import base64
import re
import time
from typing import Any

import msgspec

from adapters.base import Dialect
from engine.errors import ImageBlurredError, ImageTooLargeError, ImageTooSmallError
from engine.types import (
    WARN_BORDER_INCOMPLETE,
    WARN_PHOTOCOPY,
    WARN_REFLECTION,
    WARN_RESHOOT,
    CardReading,
    ReadOptions,
)
from core.errors import BodyTooLargeError, ShuttingDownError
from gateway.images import image_dimensions

# Which ReadOptions flag makes the engine look for each warning (engine/checks.py); the rest
# (an invalid date) are always reported.
WARNING_FLAGS = {
    WARN_BORDER_INCOMPLETE: "check_border",
    WARN_REFLECTION: "check_reflection",
    WARN_PHOTOCOPY: "check_copy",
    WARN_RESHOOT: "check_reshoot",
}
# What the console's user may ask for: query parameter -> ReadOptions flag.
ASKS = {
    "border_cut": "want_border_cut_image",
    "card_no": "want_card_no_image",
    "border": "check_border",
    "copy": "check_copy",
    "reshoot": "check_reshoot",
    "quality": "want_quality",
}
SHOWN, HIDDEN = 6, 4  # the masked number keeps its first 6 and last 4 digits


def flag(query: dict[str, str], name: str) -> bool:
    """A query switch: "1", "true", "on" or "yes" (any case) is on; anything else, or none, off."""
    return query.get(name, "").strip().lower() in ("1", "true", "on", "yes")


def asks_from(query: dict[str, str]) -> ReadOptions:
    """The user's choices as the neutral ReadOptions."""
    return ReadOptions(**{option: flag(query, name) for name, option in ASKS.items()})


def console_read_options(dialects: list[Dialect]) -> ReadOptions:
    """Everything on, under the loosest pixel limits of any dialect (each one's own are checked after)."""
    return ReadOptions(
        want_border_cut_image=True, want_card_no_image=True, check_border=True, check_reflection=True,
        check_copy=True, check_reshoot=True, want_quality=True, want_issue_date=True,
        max_pixels=max((d.limits.max_pixels for d in dialects), default=ReadOptions().max_pixels), min_side=0,
    )


def reading_as_asked(reading: CardReading, options: ReadOptions) -> CardReading:
    """`reading` (made with every option on) as a read with `options` would have returned it."""
    if options.blur_floor and reading.quality is not None and reading.quality < options.blur_floor:
        raise ImageBlurredError(f"quality {reading.quality} below {options.blur_floor}")
    return msgspec.structs.replace(
        reading,
        warnings=[w for w in reading.warnings if w not in WARNING_FLAGS or getattr(options, WARNING_FLAGS[w])],
        quality=reading.quality if options.want_quality else None,
        border_cut_jpeg=reading.border_cut_jpeg if options.want_border_cut_image else None,
        card_no_jpeg=reading.card_no_jpeg if options.want_card_no_image else None,
        issue_date=reading.issue_date if options.want_issue_date else None,
    )


def check_pixels(image: bytes, options: ReadOptions) -> None:
    """The declared-size checks the engine's decoder makes with these options (engine/decode.py)."""
    size = image_dimensions(image)
    if not size:
        return
    if size[0] * size[1] > options.max_pixels:
        raise ImageTooLargeError(f"{size[0]}x{size[1]} exceeds {options.max_pixels} pixels")
    if min(size) < options.min_side:
        raise ImageTooSmallError(f"{size[0]}x{size[1]} is below {options.min_side} px")


def mask(number: str) -> str:
    if len(number) <= SHOWN + HIDDEN:
        return "*" * len(number)
    return number[:SHOWN] + "*" * (len(number) - SHOWN - HIDDEN) + number[-HIDDEN:]


def masker(number: str):
    """A function hiding `number` in any text, however its digits are grouped ("6225 7600 ...",
    "6225-7600-..."): the middle digits become "*", separators are kept."""
    if len(number) <= SHOWN + HIDDEN:
        return lambda text: text
    pattern = re.compile(r"(?<!\d)" + r"[ \-]?".join(number) + r"(?!\d)")

    def hide(match: re.Match) -> str:
        seen, out = 0, []
        for ch in match.group(0):
            if ch.isdigit():
                out.append(ch if seen < SHOWN or seen >= len(number) - HIDDEN else "*")
                seen += 1
            else:
                out.append(ch)
        return "".join(out)

    return lambda text: pattern.sub(hide, text)


def reading_json(reading: CardReading, reveal: bool) -> dict[str, Any]:
    """The reading for the page: images as base64, the number masked unless revealed."""
    data = msgspec.to_builtins(reading)  # bytes become base64 strings
    if not reveal:
        hide = masker(reading.number)
        data["number"] = mask(reading.number)
        data["number_printed"] = hide(reading.number_printed)
    data["masked"] = not reveal
    return data


def response_json(response, hide) -> dict[str, Any]:
    """A rendered Starlette response as status, headers and body text (number hidden by `hide`)."""
    body = bytes(response.body)
    try:
        text, encoding = hide(body.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body).decode("ascii"), "base64"
    return {
        "status": response.status_code,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.raw_headers],
        "body": text,
        "body_encoding": encoding,
    }


async def dialect_answer(gateway, dialect: Dialect, image: bytes, asks: ReadOptions, outcome, started: float, hide, host: str) -> dict[str, Any]:
    """What `dialect` answers for this photo: its own request, parse, checks and render. `host`: the
    Host the console was opened at, which an SDK pointed at this gateway would send too."""
    from gateway.app import safe_render_error, vendor_code  # the app's own helpers (it imports this module)

    request_id = dialect.new_request_id()
    req = dialect.console_request(image, asks)
    if host and req.header("host") is None:
        req.headers.insert(0, ("host", host))
    error: BaseException | None = None
    try:
        if gateway.draining:  # as for a real request: refused before its body is read
            raise ShuttingDownError("draining")
        if len(req.body) > gateway.body_limit(dialect):
            raise BodyTooLargeError(f"body > {gateway.body_limit(dialect)} bytes")
        call = dialect.parse(req)
        await gateway.image_bytes(call, dialect)  # size, format and side checks, as for a real request
        options = gateway.options_for(call, dialect)
        check_pixels(image, options)
        if isinstance(outcome, BaseException):
            raise outcome
        response = dialect.render(call, reading_as_asked(outcome, options), request_id, (time.perf_counter() - started) * 1000.0)
    except Exception as exc:
        error = exc
        response = safe_render_error(dialect, exc, request_id, req)
    answer = response_json(response, hide)
    answer["dialect"] = dialect.name
    answer["code"] = vendor_code(dialect, error)
    answer["request"] = {"method": req.method, "path": req.path, "query": req.query_string.decode("latin-1")}
    return answer


async def preview(gateway, image: bytes, asks: ReadOptions, reveal: bool, host: str = "") -> dict[str, Any]:
    """The console's answer for one photo: the reading (or the engine's error) and every dialect's answer."""
    from gateway.app import EXPECTED_ERRORS

    started = time.perf_counter()
    stages: dict[str, float] = {}
    outcome: CardReading | BaseException
    try:
        if gateway.draining:
            raise ShuttingDownError("draining")
        outcome = await gateway.runner.run(gateway.engine.read, image, console_read_options(gateway.dialects), stages=stages)
    except EXPECTED_ERRORS as exc:  # no card, unreadable, busy...: each dialect says it its own way
        outcome = exc
    hide = (lambda text: text) if reveal or isinstance(outcome, BaseException) else masker(outcome.number)
    answers = [await dialect_answer(gateway, d, image, asks, outcome, started, hide, host) for d in gateway.dialects]
    result: dict[str, Any] = {
        "reading": None if isinstance(outcome, BaseException) else reading_json(outcome, reveal),
        "error": None if not isinstance(outcome, BaseException) else {"type": type(outcome).__name__},
        "stages_ms": {name: round(seconds * 1000.0, 2) for name, seconds in stages.items()},
        "dialects": answers,
    }
    size = image_dimensions(image)
    result["image_size"] = list(size) if size else None
    return result
