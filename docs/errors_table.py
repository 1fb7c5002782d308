"""Write docs/errors.md: what each dialect answers for each failure, from the adapters themselves.

    .venv/bin/python docs/errors_table.py > docs/errors.md

Nothing here restates a vendor code. Each dialect is created with its defaults, each failure
is the exception the gateway or engine raises (or, for a number that fails Luhn, a reading
handed to render()), and each cell is read back from the response the dialect renders:
its HTTP status and the code a client of that vendor finds in the body. tests/test_docs.py
regenerates the page and compares it, so the page cannot drift from the adapters.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

# Run as a script from anywhere: the repository root is this file's parent's parent.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import DIALECTS, dialect_module  # noqa: E402
from engine import errors as engine_errors  # noqa: E402
from engine.types import CardReading, ReadOptions  # noqa: E402
from core import errors as gw  # noqa: E402

# The failures a client can meet once its request is authenticated, in the order a request
# meets them, each with the exception that stands for it. None: a read whose number fails
# the Luhn check or its BIN's lengths (not an exception: each dialect's render() decides).
FAILURES: list[tuple[str, BaseException | None]] = [
    ("Body over the vendor's limit", gw.BodyTooLargeError()),
    ("Body stalled (`[server] body_timeout_s`)", gw.BodyTimeoutError()),
    ("Image field not base64", gw.BadBase64Error()),
    ("Image bytes over the vendor's limit", gw.ImageTooLargeBytesError()),
    ("Image format the vendor refuses (GIF, ...)", gw.UnsupportedFormatError()),
    ("Image URL: download timed out", gw.FetchTimeoutError("timeout")),
    ("Image URL: private or loopback address", gw.FetchForbiddenError("private address")),
    ("Image URL: download too large", gw.FetchTooLargeError("too large")),
    ("Image URL: other download failure", gw.FetchError("HTTP 404")),
    ("Engine queue full (busy)", gw.EngineBusyError()),
    ("Credential over its rate limit", gw.RateLimitedError()),
    ("Gateway draining (SIGTERM)", gw.ShuttingDownError()),
    ("Replay store unreachable (`[replay]`: Redis down, SQLite file locked)", gw.ReplayStoreUnavailableError("unreachable")),
    ("Not an image, or corrupt", engine_errors.ImageDecodeError()),
    ("Image too large (pixels)", engine_errors.ImageTooLargeError()),
    ("Image too small (shorter side)", engine_errors.ImageTooSmallError()),
    ("No card found", engine_errors.NoCardFoundError()),
    ("Card found, number unreadable", engine_errors.NumberUnreadableError()),
    ("Image blurred (`[engine] blur_floor`)", engine_errors.ImageBlurredError()),
    ("Number read but fails Luhn or its BIN's lengths", None),
    ("Any other engine failure", engine_errors.EngineError()),
]

# How each vendor's client finds the error in the body (the dialect's module docstring has the
# full shape). A dialect missing here fails loudly: a new one must say where its code is.
SHAPES: dict[str, str] = {
    "tencent": "Always HTTP 200; the code is `Response.Error.Code`.",
    "myqcloud": "HTTP 200; the code is `code` (0 is success).",
    "huawei": "The code is `error_code`.",
    "facepp": "The code is the start of `error_message`; an image with nothing readable is a 200 "
    "with an empty `bank_cards` list, as Face++ answers it.",
    "hex": "HTTP 200; the code is `errorcode` (0 is success).",
    "baidu": "Always HTTP 200 (the SDK ignores the status); the code is `error_code`.",
    "alibaba": "The code is `Code`; a success has none.",
}

# A reading whose number fails Luhn: everything else plausible, as the engine would give it.
INVALID_READING = CardReading(
    number="6225760088888880",
    number_printed="6225 7600 8888 8880",
    number_confidence=0.9,
    digit_confidences=[0.9] * 16,
    number_valid=False,
    number_quad=((10.0, 60.0), (300.0, 60.0), (300.0, 80.0), (10.0, 80.0)),
    number_box=None,
    card_quad=((0.0, 0.0), (320.0, 0.0), (320.0, 200.0), (0.0, 200.0)),
    image_size=(320, 200),
    rectified_size=(856, 540),
)
# Bytes the console request carries; parse() does not decode images, so any bytes will do.
SOME_IMAGE = b"\xff\xd8\xff\xe0 not decoded by parse()"


def wire_code(name: str, status: int, body: bytes) -> str:
    """The code a client of dialect `name` reads from this answer; "success" when there is none."""
    if name == "facepp" and status == 413:
        return body.decode()  # a plain-text page, as Face++'s front end sends it
    doc = json.loads(body)
    if name == "tencent":
        error = doc["Response"].get("Error")
        return error["Code"] if error else "success"
    if name in ("myqcloud", "hex"):
        code = doc["code"] if name == "myqcloud" else doc["errorcode"]
        return str(code) if code != 0 else "success"
    if name in ("huawei", "baidu"):
        return str(doc["error_code"]) if "error_code" in doc else "success"
    if name == "facepp":
        if "error_message" in doc:
            return doc["error_message"].split(":")[0]
        return "success" if doc["bank_cards"] else "empty `bank_cards`"
    if name == "alibaba":
        return doc.get("Code", "success")
    raise KeyError(f"no wire shape known for dialect {name!r}")


def answer(name: str, failure: BaseException | None) -> tuple[int, str]:
    """(HTTP status, code) that dialect `name`, with its defaults, answers for `failure`."""
    module = dialect_module(DIALECTS[name])
    dialect = module.create({}, allow_unsigned=True)
    if failure is None:
        call = dialect.parse(dialect.console_request(SOME_IMAGE, ReadOptions()))
        response = dialect.render(call, INVALID_READING, dialect.new_request_id(), 1.0)
    else:
        response = dialect.render_error(failure, dialect.new_request_id())
    return response.status_code, wire_code(name, response.status_code, response.body)


def cell(status: int, code: str) -> str:
    if code == "success":
        return f"{status} success, the number as read"
    if code.startswith("empty"):
        return f"{status} {code}"
    return f"{status} `{code}`"


def page() -> str:
    lines = [
        "# What each engine failure answers, per dialect",
        "",
        "Generated by `docs/errors_table.py` from the adapters' own error tables (each cell is the",
        "status and code of the answer the dialect renders); `tests/test_docs.py` fails when this",
        "page and the adapters disagree. Regenerate with",
        "`.venv/bin/python docs/errors_table.py > docs/errors.md`.",
        "",
        "Signature, token and parameter errors are each vendor's own and are not listed here. Every",
        "failure below is a row of each dialect's error table (`adapters/<vendor>_errors.py`), even",
        "where its API has no such input: none is left to a catch-all.",
        "The hex dialect answers a number that fails Luhn as read unless `[hex] reject_invalid_number",
        "= true`, which makes it `-9014`.",
    ]
    for name in DIALECTS:
        lines += ["", f"## {name}", "", SHAPES[name], "", "| failure | HTTP status and code |", "|---|---|"]
        lines += [f"| {label} | {cell(*answer(name, failure))} |" for label, failure in FAILURES]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(page())
