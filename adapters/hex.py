"""The self-hosted "hex" bank card API: POST /hex/ocrapi/creditcardocr.

Spec: hex-selfhosted-creditcardocr.txt (V1.0.0). JSON in, JSON out, HTTP 200
with `errorcode`/`errormsg` in the body for every documented outcome.

Request: `image` (strict base64 JPG/PNG/BMP) or `url` (url wins when both are
given), `session_id` (echoed), and the option flags, accepted both top-level
and nested under `options` (the nested value wins when both are given).

Auth (not in the spec, which describes an open intranet service): open by
default. With `token = "..."` or `tokens = [...]` in [hex], every request must
carry one of them in the `Authorization` header (plain, or `Bearer <token>`);
`token_header = "X-Hex-Token"` picks another header. Without tokens the API is
served only when the gateway allows unsigned requests (bound to loopback, or
--insecure), or when [hex] says `open = true`.

Outside the spec's tables, our own choices (documented here, tested):
  * an auth failure answers HTTP 401 {"errorcode": -1, "errormsg": "AUTH_FAILED"};
  * an unknown /hex/... path answers HTTP 404 with -5208;
  * a body that is not a JSON object, or a flag that is not a boolean, is -9010;
  * with `reject_invalid_number = true` in [hex], a number failing the Luhn/length
    check is -9014 ERROR_CREDITCARD_ILLEGAL. Off by default: the spec's own example
    returns 6225760088888888, which fails Luhn, as a success;
  * the engine queue being full is -5208 (hex has no rate-limit code);
  * every response carries our request id in `X-Request-Id`.
The error table, every code and the neutral failures each answers, is adapters/hex_errors.py.
"""
from __future__ import annotations

import base64
import hmac
import json
import uuid
from typing import Annotated, Any

import msgspec
from starlette.responses import JSONResponse, Response

from adapters.base import DialectSettings, Secret, auth_mode_of, settings_from
from adapters.error_table import ErrorEntry
from adapters.hex_errors import ERRORS, HexError, error_code_for
from core.limits import ImageLimits
from core.request import EngineCall, ImageSource, IncomingRequest, console_request
from engine import types as engine_types
from engine.types import CardReading, ReadOptions
from core.errors import BadJSONError
from core.body import parse_json
from core.strict_base64 import decode_base64_strict

NAME = "hex"
PATH = "/hex/ocrapi/creditcardocr"

# Warning codes (1.3.6), in the order the single deprecated `warncode` picks from.
WARNINGS: dict[str, tuple[int, str]] = {
    engine_types.WARN_INVALID_DATE: (-9110, "WARN_CREDITCARD_INVALID_DATE"),
    engine_types.WARN_BORDER_INCOMPLETE: (-9111, "WARN_CREDITCARD_CORNER_EXCEED"),
    engine_types.WARN_REFLECTION: (-9112, "WARN_CREDITCARD_REFLECT_LIGHT"),
    engine_types.WARN_PHOTOCOPY: (-9113, "WARN_CREDITCARD_COPY_CARD"),
    engine_types.WARN_RESHOOT: (-9114, "WARN_CREDITCARD_RESHOOT_CARD"),
}


FLAGS = (
    "enable_border_check",
    "enable_reshoot_check",
    "enable_copy_check",
    "ret_border_cut_image",
    "ret_card_no_image",
    "ret_warncode_flag",
    "enable_recognize_warn_code",
    "enable_quality_value",
)
FLAG_DEFAULTS = {flag: False for flag in FLAGS} | {"ret_card_no_image": True}

DEFAULT_LIMITS = ImageLimits(
    max_body_bytes=10 * 1024 * 1024,  # a 7 MB image as base64 plus the JSON around it
    max_image_bytes=7 * 1024 * 1024,
    fetch_timeout_s=3.0,
    max_pixels=40_000_000,
    min_side=0,
    formats=frozenset({"jpeg", "png", "bmp"}),  # "JPG、PNG、BMP"
)


def _flag(value: Any, name: str) -> bool:
    """JSON booleans, plus the 0/1 and "true"/"false" that hand-written clients send."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "0", "1"):
        return value.strip().lower() in ("true", "1")
    raise HexError("CREDITCARD_OCR_PREPROCESS_ERROR", f"{name} is not a boolean")


PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class Settings(DialectSettings):
    """[hex]"""

    token: Secret | None = None  # one token...
    tokens: list[Secret] = []  # ...or several; either way, each request must carry one
    token_header: str = "authorization"  # the header carrying it (plain or "Bearer <token>")
    open: bool = False  # true: serve without tokens even when not bound to loopback
    reject_invalid_number: bool = False  # true: a number failing Luhn/length is -9014, not a success
    # The spec's limits, for a deployment whose hex service was configured otherwise.
    max_body_bytes: PositiveInt = DEFAULT_LIMITS.max_body_bytes
    max_image_bytes: PositiveInt = DEFAULT_LIMITS.max_image_bytes
    fetch_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = DEFAULT_LIMITS.fetch_timeout_s

    def all_tokens(self) -> list[str]:
        return [*self.tokens, *([self.token] if self.token else [])]

    def has_credentials(self) -> bool:
        return bool(self.all_tokens())


# Plain JSON over HTTP (README.md); shown by the console.
SDK_SNIPPET = """\
import base64, requests
body = {"image": base64.b64encode(open("card.jpg", "rb").read()).decode(), "session_id": "s1"}
answer = requests.post("{base_url}/hex/ocrapi/creditcardocr", json=body,
                       headers={"Authorization": "TOKEN"}).json()
"""


class HexDialect:
    name = NAME

    def __init__(self, settings: Settings, allow_unsigned: bool):
        self.tokens = [t.encode() for t in settings.all_tokens()]
        self.token_header = settings.token_header.lower()
        self.open = not self.tokens and (allow_unsigned or settings.open)
        self.reject_invalid_number = settings.reject_invalid_number
        self.limits = ImageLimits(
            **{
                **DEFAULT_LIMITS.__dict__,
                "max_body_bytes": settings.max_body_bytes,
                "max_image_bytes": settings.max_image_bytes,
                "fetch_timeout_s": settings.fetch_timeout_s,
            }
        )

    # --- routing -------------------------------------------------------------

    def routes(self) -> list[tuple[str, list[str]]]:
        return [(PATH, ["POST"])]  # native path and prefix are the same

    def owns_path(self, path: str) -> bool:
        return path == "/hex" or path.startswith("/hex/")

    def new_request_id(self) -> str:
        return uuid.uuid4().hex

    # --- request -------------------------------------------------------------

    def authenticate(self, req: IncomingRequest, now: float) -> str | None:
        if not self.tokens:
            if self.open:
                return None
            raise HexError("AUTH_FAILED", "no hex token configured and unsigned requests not allowed")
        sent = (req.header(self.token_header) or "").strip()
        if sent[:7].lower() == "bearer ":
            sent = sent[7:].strip()
        sent_bytes = sent.encode("utf-8", "replace")
        matched = False
        for index, token in enumerate(self.tokens):  # no early exit: same work whichever matches
            if hmac.compare_digest(sent_bytes, token):
                matched = True
                credential = f"token#{index}"
        if not matched:
            raise HexError("AUTH_FAILED", "missing or wrong token")
        return credential

    def parse(self, req: IncomingRequest) -> EngineCall:
        try:
            body = parse_json(req.body)
        except BadJSONError as exc:
            raise HexError("CREDITCARD_OCR_PREPROCESS_ERROR", f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise HexError("CREDITCARD_OCR_PREPROCESS_ERROR", "body is not a JSON object")

        nested = body.get("options")
        if nested is not None and not isinstance(nested, dict):
            raise HexError("CREDITCARD_OCR_PREPROCESS_ERROR", "options is not an object")
        flags = dict(FLAG_DEFAULTS)
        for source in (body, nested or {}):  # nested options override top-level ones
            for flag in FLAGS:
                if source.get(flag) is not None:
                    flags[flag] = _flag(source[flag], flag)

        url, image = body.get("url"), body.get("image")
        if url is not None and not isinstance(url, str) or image is not None and not isinstance(image, str):
            raise HexError("SDK_IMAGE_DECODE_FAILED", "image/url must be strings")
        if url:  # "同时赋值时,则以url指定的图像作为输入"
            source = ImageSource(url=url)
        elif image:
            source = ImageSource(data=decode_base64_strict(image))
        else:
            raise HexError("SDK_IMAGE_DECODE_FAILED", "neither image nor url")

        wants_warnings = flags["ret_warncode_flag"] or flags["enable_recognize_warn_code"]
        options = ReadOptions(
            want_border_cut_image=flags["ret_border_cut_image"],
            want_card_no_image=flags["ret_card_no_image"],
            check_border=flags["enable_border_check"],
            check_copy=flags["enable_copy_check"],
            check_reshoot=flags["enable_reshoot_check"],
            # hex has a reflection warning but no switch for it: look when warnings are wanted
            check_reflection=wants_warnings,
            want_quality=flags["enable_quality_value"],
            max_pixels=self.limits.max_pixels,
            min_side=self.limits.min_side,
        )
        return EngineCall(
            image=source,
            options=options,
            context={"session_id": echoed_session_id(body.get("session_id")), "flags": flags},
        )

    # --- response ------------------------------------------------------------

    def render(self, call: EngineCall, reading: CardReading, request_id: str, elapsed_ms: float) -> Response:
        flags = call.context["flags"]
        if self.reject_invalid_number and not reading.number_valid:
            return self._error(ERRORS["ERROR_CREDITCARD_ILLEGAL"], request_id, call.context.get("session_id", ""), elapsed_ms)
        out: dict[str, Any] = {
            "errorcode": 0,
            "errormsg": "OK",
            "session_id": call.context["session_id"],
            "timecost": round(elapsed_ms / 1000.0, 6),
            "items": self._items(reading),
        }
        warnings = self._warnings(reading, flags)
        if flags["ret_warncode_flag"]:  # deprecated single code: the first in table order
            out["warncode"] = warnings[0][0] if warnings else 0
            out["warnmsg"] = warnings[0][1] if warnings else ""
        if flags["enable_recognize_warn_code"]:
            out["recognize_warn_code"] = [code for code, _ in warnings]
            out["recognize_warn_msg"] = [msg for _, msg in warnings]
        if flags["enable_quality_value"]:
            out["quality_value"] = int(reading.quality) if reading.quality is not None else 0
        special: dict[str, str] = {}
        if flags["ret_border_cut_image"] and reading.border_cut_jpeg:
            special["border_cut"] = base64.b64encode(reading.border_cut_jpeg).decode()
        if flags["ret_card_no_image"] and reading.card_no_jpeg:
            special["card_no"] = base64.b64encode(reading.card_no_jpeg).decode()
        if special:
            out["special_image"] = special
        return JSONResponse(out, headers={"X-Request-Id": request_id})

    @staticmethod
    def _items(reading: CardReading) -> list[dict[str, Any]]:
        def item(name: str, text: str, conf: float, box: engine_types.Box | None) -> dict[str, Any]:
            coord = {"x": box.x, "y": box.y, "width": box.width, "height": box.height} if box else {
                "x": 0, "y": 0, "width": 0, "height": 0}
            return {"item": name, "itemstring": text, "itemconf": float(conf), "itemcoord": coord, "wordcoordpoint": []}

        # Coordinates are in the rectified card ("旋转纠正之后的图像"). Bank facts come
        # from the BIN table, not from pixels: no box, and the number's confidence.
        items = [item("卡号", reading.number, reading.number_confidence, reading.number_box)]
        bank = reading.bank
        if bank is not None:
            if bank.card_kind:
                items.append(item("卡类型", bank.card_kind, reading.number_confidence, None))
            if bank.card_name:
                items.append(item("卡名字", bank.card_name, reading.number_confidence, None))
            if bank.bank_name:
                info = f"{bank.bank_name}({bank.institution_code})" if bank.institution_code else bank.bank_name
                items.append(item("银行信息", info, reading.number_confidence, None))
        if reading.expiry is not None:
            items.append(item("有效期", reading.expiry.text, reading.expiry.confidence, reading.expiry.box))
        return items

    @staticmethod
    def _warnings(reading: CardReading, flags: dict[str, bool]) -> list[tuple[int, str]]:
        # Only what the caller switched on (invalid date and reflection have no switch).
        enabled = {
            engine_types.WARN_INVALID_DATE: True,
            engine_types.WARN_REFLECTION: True,
            engine_types.WARN_BORDER_INCOMPLETE: flags["enable_border_check"],
            engine_types.WARN_PHOTOCOPY: flags["enable_copy_check"],
            engine_types.WARN_RESHOOT: flags["enable_reshoot_check"],
        }
        found = set(reading.warnings)
        return [WARNINGS[name] for name in WARNINGS if name in found and enabled[name]]

    def render_error(self, exc: Exception, request_id: str, req: IncomingRequest | None = None) -> Response:
        return self._error(ERRORS.for_exception(exc), request_id, _session_id(req), None)

    @staticmethod
    def _error(entry: ErrorEntry, request_id: str, session_id: Any, elapsed_ms: float | None) -> Response:
        out: dict[str, Any] = {"errorcode": entry.code, "errormsg": entry.message, "session_id": session_id}
        if elapsed_ms is not None:
            out["timecost"] = round(elapsed_ms / 1000.0, 6)
        return JSONResponse(out, status_code=entry.status, headers={"X-Request-Id": request_id})

    def error_code(self, exc: Exception) -> int:
        return error_code_for(exc)

    # --- console (gateway/console) ---

    def auth_mode(self) -> str:
        return auth_mode_of(self.open, signed=False, token=True)

    def console_request(self, image: bytes, asks: ReadOptions) -> IncomingRequest:
        """A JSON POST with the image and the flags `asks` sets (warnings wanted when any check is)."""
        checks = asks.check_border or asks.check_copy or asks.check_reshoot
        body = {
            "image": base64.b64encode(image).decode("ascii"),
            "session_id": "console",
            "enable_border_check": asks.check_border,
            "enable_copy_check": asks.check_copy,
            "enable_reshoot_check": asks.check_reshoot,
            "ret_border_cut_image": asks.want_border_cut_image,
            "ret_card_no_image": asks.want_card_no_image,
            "ret_warncode_flag": checks,
            "enable_quality_value": asks.want_quality,
        }
        return console_request("POST", PATH, {"Content-Type": "application/json"}, json.dumps(body).encode("ascii"))

    def sdk_snippet(self, base_url: str) -> str:
        return SDK_SNIPPET.replace("{base_url}", base_url)


def _session_id(req: IncomingRequest | None) -> Any:
    """Echo the caller's session_id on errors too, when the body is readable."""
    if req is None or not req.body:
        return ""
    try:
        body = parse_json(req.body)
    except BadJSONError:
        return ""
    return echoed_session_id(body.get("session_id") if isinstance(body, dict) else None)


def echoed_session_id(session_id: Any) -> Any:
    """The caller's session_id as it is echoed: as sent, or "" when there is none or JSON cannot
    carry it back (1e999999 parses to an infinite float, which no JSON answer may hold)."""
    if session_id is None:
        return ""
    try:
        json.dumps(session_id, allow_nan=False)
    except ValueError:
        return ""
    return session_id


def create(settings: Settings | dict, allow_unsigned: bool) -> HexDialect:
    return HexDialect(settings_from(settings, Settings, NAME), allow_unsigned)
