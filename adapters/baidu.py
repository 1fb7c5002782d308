"""Baidu AI Cloud OCR `POST /rest/2.0/ocr/v1/bankcard`, and the token endpoint `/oauth/2.0/token`.

Wire contract: vendor-specs/baidu-bankcard.md and clients/README.md §5.1, §11.3
(`baidu-aip` for Python, `baidu-aip-sdk` for Node). Also served under `/baidu/`.

Auth, one per request (adapters/baidu_auth.py):
  * `?access_token=`: a token this gateway issued at `/oauth/2.0/token` (client
    credentials: query on GET or POST, or a form body as the Node SDK sends). Node glues
    `?aipSdk=node` onto the token value: it is cut at the first `?`.
  * `authorization: bce-auth-v1/...`, checked over the Host header as received (Python
    sends it without the port, Node sends `aip.baidubce.com`), within 1800 s.

Every API answer is HTTP 200 with JSON: both SDKs return the body whatever the status,
and errors are `{"error_code": <int>, "error_msg", "log_id"}`. Token errors are
`{"error", "error_description"}` with HTTP 401 (invalid_client) or 400, as OAuth 2.0 has them.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec
from starlette.responses import Response

from adapters import baidu_auth
from adapters.error_table import ErrorEntry
from adapters.baidu_errors import ERRORS, TOKEN_ERROR_KEYS, BaiduError, error_code_for  # noqa: F401  (TOKEN_ERROR_KEYS: this dialect's API too)
from adapters.base import DialectSettings, auth_mode_of, numeric_request_id, settings_from
from core.limits import ImageLimits
from core.request import EngineCall, ImageSource, IncomingRequest, console_request
from engine.types import WARN_BORDER_INCOMPLETE, CardReading, ReadOptions
from core.body import parse_form
from core.strict_base64 import decode_base64_strict

log = logging.getLogger("cardgate.baidu")

NAME = "baidu"
PREFIX = "/baidu"
BANKCARD_PATH = "/rest/2.0/ocr/v1/bankcard"
TOKEN_PATH = "/oauth/2.0/token"
NATIVE_ROOTS = ("/rest/2.0/", "/oauth/2.0/")
SCOPE = "public brain_all_scope brain_ocr_scope"  # both SDKs use a token only with brain_all_scope

# The current bank card page: base64 then URL-encoded at most 8 MB, shortest side 15 px,
# longest 8192 px, JPG/PNG/BMP; a request of 10 MB or more is "input oversize".
IMAGE_FIELD_MAX = 8 * 1024 * 1024
URL_MAX_BYTES = 1024
LIMITS = ImageLimits(
    max_body_bytes=10 * 1024 * 1024 - 1,
    max_image_bytes=IMAGE_FIELD_MAX * 3 // 4,
    fetch_timeout_s=3.0,
    max_pixels=40_000_000,
    min_side=15,
    max_side=8192,
    formats=frozenset({"jpeg", "png", "bmp"}),
)


# BIN table card kind -> bank_card_type (current page: 1 debit, 2 credit, 3 quasi-credit, 4 prepaid).
CARD_TYPES: dict[str, int] = {"借记卡": 1, "贷记卡": 2, "准贷记卡": 3, "预付费卡": 4}
CLEAR_QUALITY = 25  # engine quality (0-100) from which IsClear is 1: the blur floor README suggests


class App(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """[baidu.apps.<app id>]: the OAuth key pair, the bce-auth-v1 key pair, or both."""

    api_key: str = ""  # OAuth client_id: the app's "API Key"
    secret_key: str = ""  # OAuth client_secret: the app's "Secret Key"
    access_key: str = ""  # bce-auth-v1 AK (an AI Cloud IAM key pair)
    secret_access_key: str = ""  # bce-auth-v1 SK

    def __post_init__(self) -> None:
        if bool(self.api_key) != bool(self.secret_key) or bool(self.access_key) != bool(self.secret_access_key):
            raise ValueError("api_key needs secret_key, access_key needs secret_access_key")
        if not self.api_key and not self.access_key:
            raise ValueError("give api_key and secret_key, access_key and secret_access_key, or both")


class Settings(DialectSettings):
    """[baidu]"""

    apps: dict[str, App] = {}  # app id -> its keys

    def has_credentials(self) -> bool:
        return bool(self.apps)


# --- request fields --------------------------------------------------------------------


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BaiduError("216100", "a field is not UTF-8") from None


def form_fields(body: bytes) -> dict[str, bytes]:
    """The first value of each field of a urlencoded body."""
    fields: dict[str, bytes] = {}
    for name, value in parse_form(body):
        fields.setdefault(name, value)
    return fields


def query_fields(query_string: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


def _flag(fields: dict[str, bytes], name: str, default: bool = False) -> bool:
    """"true"/"false" as both SDKs send them; anything else is 216100."""
    value = fields.get(name)
    if value is None or value.strip() == b"":
        return default
    text = value.strip().lower()
    if text not in (b"true", b"false"):
        raise BaiduError("216100", f"{name} is not true/false")
    return text == b"true"


def access_token(req: IncomingRequest) -> str:
    """The token from the query, cut at a '?' (the Node SDK appends `?aipSdk=node` to it)."""
    return query_fields(req.query_string).get("access_token", "").split("?", 1)[0].strip()


# --- answers -----------------------------------------------------------------------------


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def error_response(entry: ErrorEntry, request_id: str) -> Response:
    if isinstance(entry.code, str):  # the token endpoint's OAuth error: its own shape and a real status
        return json_response({"error": entry.code, "error_description": entry.message}, entry.status)
    return json_response({"error_code": entry.code, "error_msg": entry.message, "log_id": int(request_id)})


def grouped_number(reading: CardReading) -> str:
    """The number as printed when the print has the same digits, else in groups of four."""
    printed = " ".join(reading.number_printed.split())
    if printed.replace(" ", "") == reading.number:
        return printed
    return " ".join(reading.number[i : i + 4] for i in range(0, len(reading.number), 4))


def valid_date(reading: CardReading) -> str:
    if reading.expiry is None or not re.fullmatch(r"\d{2}/\d{2}", reading.expiry.text.strip()):
        return ""
    return reading.expiry.text.strip()


def direction(reading: CardReading) -> int:
    """0 upright, 1/2/3 turned 90/180/270 degrees counter-clockwise, from the card's top edge."""
    (x0, y0), (x1, y1) = reading.card_quad[0], reading.card_quad[1]
    if (x0, y0) == (x1, y1):
        return -1
    angle = math.degrees(math.atan2(y0 - y1, x1 - x0)) % 360  # image y grows downwards
    return int(((angle + 45) % 360) // 90)


def number_location(reading: CardReading) -> dict[str, int]:
    xs = [p[0] for p in reading.number_quad]
    ys = [p[1] for p in reading.number_quad]
    left, top = int(min(xs)), int(min(ys))
    return {"left": left, "top": top, "width": int(max(xs)) - left, "height": int(max(ys)) - top}


def card_quality(reading: CardReading) -> dict[str, Any]:
    """Both spellings: the field table has `_propobility`, the sample output `_probability`."""
    quality = reading.quality if reading.quality is not None else 0
    clear = round(quality / 100.0, 4)
    complete = 0.0 if WARN_BORDER_INCOMPLETE in reading.warnings else 1.0
    return {
        "IsClear": int(quality >= CLEAR_QUALITY),
        "IsClear_propobility": clear,
        "IsClear_probability": clear,
        "IsComplete": int(complete),
        "IsComplete_propobility": complete,
        "IsComplete_probability": complete,
    }


# --- the dialect -------------------------------------------------------------------------


# baidu-aip pointed at the gateway (README.md); shown by the console.
SDK_SNIPPET = """\
from aip import AipOcr
client = AipOcr("APP_ID", "API_KEY", "SECRET_KEY")
client._AipBase__accessTokenUrl = "{base_url}/oauth/2.0/token"
client._AipOcr__bankcardUrl = "{base_url}/rest/2.0/ocr/v1/bankcard"
client.bankcard(open("card.jpg", "rb").read(), {"detect_quality": "true"})
"""


class BaiduDialect:
    name = NAME
    limits = LIMITS

    def __init__(self, settings: Settings, allow_unsigned: bool):
        self.apps: dict[str, App] = dict(settings.apps)
        self.by_api_key = {app.api_key: (app_id, app) for app_id, app in self.apps.items() if app.api_key}
        self.bce_secrets = {app.access_key: app.secret_access_key for app in self.apps.values() if app.access_key}
        # Open only when no app is configured and the operator allows unsigned requests.
        self.open = allow_unsigned and not self.apps

    def routes(self) -> list[tuple[str, list[str]]]:
        token, card = ["GET", "POST"], ["POST"]
        return [(TOKEN_PATH, token), (PREFIX + TOKEN_PATH, token), (BANKCARD_PATH, card), (PREFIX + BANKCARD_PATH, card)]

    def owns_path(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/") or path.startswith(NATIVE_ROOTS)

    def new_request_id(self) -> str:
        # log_id: a uint64 in the doc, kept below 2**53 so JavaScript clients read it exactly
        return numeric_request_id(10**15, 2**53)

    # --- auth ---

    def authenticate(self, req: IncomingRequest, now: float) -> str | None:
        if req.path.endswith(TOKEN_PATH):
            return self._client_credentials(req)
        authorization = (req.header("authorization") or "").strip()
        if authorization.lower().startswith(baidu_auth.AUTH_VERSION + "/") and not self.open:
            return self._bce(req, authorization, now)
        if self.open:
            return None
        token_text = access_token(req)
        if not token_text:
            raise BaiduError("100", "no access_token and no bce-auth-v1 signature")
        try:
            token = baidu_auth.read_token(token_text)
            app = self.apps.get(token.app_id)
            if app is None or not app.api_key:
                raise baidu_auth.AuthFailure("mismatch", "no such app")
            baidu_auth.verify_token(token, app.api_key, app.secret_key, now)
        except baidu_auth.AuthFailure as exc:
            raise BaiduError("111" if exc.reason == "expired" else "110", exc.detail) from None
        return app.api_key

    def _bce(self, req: IncomingRequest, authorization: str, now: float) -> str:
        headers: dict[str, str] = {}
        for name, value in req.headers:
            headers.setdefault(name, value)
        native = req.path.removeprefix(PREFIX) if req.path.startswith(PREFIX + "/") else req.path
        paths = [req.path] if native == req.path else [req.path, native]
        try:
            return baidu_auth.verify(authorization, self.bce_secrets.get, req.method, paths, req.query_string, headers, now)
        except baidu_auth.AuthFailure as exc:
            raise BaiduError("14", f"{exc.reason}: {exc.detail}") from None

    def _token_params(self, req: IncomingRequest) -> dict[str, str]:
        params = query_fields(req.query_string)
        if req.method == "POST" and req.body:
            for name, value in form_fields(req.body).items():
                params.setdefault(name, value.decode("utf-8", "replace"))
        return params

    def _client_credentials(self, req: IncomingRequest) -> str | None:
        params = self._token_params(req)
        if params.get("grant_type") != "client_credentials":
            raise BaiduError("unsupported_grant_type", repr(params.get("grant_type"))[:40])
        client_id, client_secret = params.get("client_id", ""), params.get("client_secret", "")
        if self.open and client_id and client_secret:
            return None
        found = self.by_api_key.get(client_id)
        if found is None:
            raise BaiduError("invalid_client.unknown", "unknown API key")
        if not secrets.compare_digest(client_secret.encode(), found[1].secret_key.encode()):
            raise BaiduError("invalid_client.secret", "wrong Secret Key")
        return client_id

    def answer_without_image(self, req: IncomingRequest, credential: str | None, request_id: str, now: float):
        if not req.path.endswith(TOKEN_PATH):
            return None
        params = self._token_params(req)
        found = self.by_api_key.get(params.get("client_id", ""))
        if found is not None:
            app_id, app = found
            token = baidu_auth.mint_token(app_id, app.api_key, app.secret_key, now)
        else:  # open gateway: tokens are not checked, any well-formed one will do
            token = baidu_auth.mint_token("open", params["client_id"], params["client_secret"], now)
        return json_response({
            "refresh_token": "25." + token.split(".", 1)[1],
            "expires_in": baidu_auth.TOKEN_LIFETIME_S,
            "session_key": secrets.token_hex(24),
            "access_token": token,
            "scope": SCOPE,
            "session_secret": secrets.token_hex(16),
        })

    # --- the call ---

    def parse(self, req: IncomingRequest) -> EngineCall:
        fields = form_fields(req.body)
        image, url = fields.get("image"), fields.get("url")
        if image:  # the doc: image wins over url
            if len(image) > IMAGE_FIELD_MAX:
                raise BaiduError("216202", f"image field of {len(image)} bytes")
            source = ImageSource(data=decode_base64_strict(image))
        elif url:
            if len(url) > URL_MAX_BYTES:
                raise BaiduError("282114", f"url of {len(url)} bytes")
            text = _text(url).strip()
            parts = urlsplit(text)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise BaiduError("282111", "url is not http(s)://host/...")
            source = ImageSource(url=text)
        elif image is not None:
            raise BaiduError("216200", "image is empty")
        else:
            raise BaiduError("216101.image", "neither image nor url")

        want_quality = _flag(fields, "detect_quality")
        options = ReadOptions(
            want_quality=want_quality,
            check_border=want_quality,  # IsComplete is the border check
            max_pixels=LIMITS.max_pixels,
            min_side=LIMITS.min_side,
        )
        _flag(fields, "detect_direction", True)  # checked only: `direction` is always answered
        context = {"location": _flag(fields, "location"), "quality": want_quality}
        return EngineCall(image=source, options=options, context=context)

    def render(self, call: EngineCall, reading: CardReading, request_id: str, elapsed_ms: float) -> Response:
        if not reading.number_valid:  # Luhn or length does not fit the BIN: never hand out a wrong number
            return error_response(ERRORS["216631"], request_id)
        bank = reading.bank
        result: dict[str, Any] = {
            "bank_card_number": grouped_number(reading),
            "valid_date": valid_date(reading),
            "bank_card_type": CARD_TYPES.get((bank.card_kind if bank else None) or "", 0),
            "bank_name": (bank.bank_name if bank else None) or "",
            "holder_name": "",  # the engine does not read names
        }
        if call.context.get("location"):
            result["bank_card_number_location"] = number_location(reading)
        if call.context.get("quality"):
            result["card_quality"] = card_quality(reading)
        return json_response({"log_id": int(request_id), "direction": direction(reading), "result": result})

    def render_error(self, exc: Exception, request_id: str, req: IncomingRequest | None = None) -> Response:
        try:
            return error_response(ERRORS.for_exception(exc), request_id)
        except Exception:  # never let an error page fail
            log.exception("baidu: rendering %r failed", exc)
            return json_response({"error_code": 282000, "error_msg": "internal error"})

    def error_code(self, exc: Exception) -> int | str:
        return error_code_for(exc)

    # --- console (gateway/console) ---

    def auth_mode(self) -> str:
        return auth_mode_of(self.open, signed=bool(self.bce_secrets), token=bool(self.by_api_key))

    def console_request(self, image: bytes, asks: ReadOptions) -> IncomingRequest:
        """What baidu-aip's client.bankcard(image, options) sends: a form POST with the image;
        detect_quality is this API's one flag (quality and the border check)."""
        fields = {"image": base64.b64encode(image).decode("ascii")}
        if asks.want_quality or asks.check_border:
            fields["detect_quality"] = "true"
        return console_request("POST", BANKCARD_PATH, {"Content-Type": "application/x-www-form-urlencoded"},
                               urlencode(fields).encode("ascii"), query=b"aipSdk=python")

    def sdk_snippet(self, base_url: str) -> str:
        return SDK_SNIPPET.replace("{base_url}", base_url)



def create(settings: Settings | dict, allow_unsigned: bool) -> BaiduDialect:
    return BaiduDialect(settings_from(settings, Settings, NAME), allow_unsigned)
