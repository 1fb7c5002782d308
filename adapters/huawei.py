"""Huawei Cloud OCR v2 bank card dialect: `POST /v2/{project_id}/ocr/bankcard`.

Wire contract: vendor-specs/huawei-v2-bankcard.txt and clients/README.md §3
(huaweicloudsdkocr). Auth is the SDK's `SDK-HMAC-SHA256` AK/SK signature
(adapters/huawei_auth.py), or an `X-Auth-Token` that must be one of the opaque
tokens in the config (real IAM tokens cannot be validated offline). Errors are HTTP >= 400 with
`{"error_code", "error_msg"}` (the table: adapters/huawei_errors.py); the request id travels in `X-Request-Id`, which
the SDK copies into `response.x_request_id` / `exception.request_id`.
"""
from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import uuid
from typing import Any

import msgspec
from starlette.responses import Response

from adapters.base import DialectSettings, Secret, VendorError, auth_mode_of, settings_from
from core.limits import ImageLimits
from core.request import EngineCall, ImageSource, IncomingRequest, console_request
from adapters.huawei_errors import ERRORS, HuaweiError, error_code_for
from adapters.huawei_auth import canonical_request, string_to_sign, verify_aksk  # noqa: F401  (this dialect's API too)
from engine.types import CardReading, ReadOptions
from core import errors as gw
from core.body import parse_json
from core.strict_base64 import decode_base64_strict

log = logging.getLogger("cardgate.huawei")

NAME = "huawei"
ROUTE_PATH = "/v2/{project_id}/ocr/bankcard"
PREFIX = "/huawei"

# The doc: base64 of the image at most 10 MB (so ~7.5 MB of image), shorter side
# >= 15 px, longer side <= 8192 px, JPEG/PNG/BMP/TIFF; the request body itself at
# most 10 MB (ModelArts.4104), plus a little room for the JSON around the base64.
_BASE64_MAX = 10 * 1024 * 1024
LIMITS = ImageLimits(
    max_body_bytes=_BASE64_MAX + 4096,
    max_image_bytes=_BASE64_MAX * 3 // 4,
    fetch_timeout_s=10.0,  # not documented ("long downloads fail"); our choice
    max_pixels=8192 * 8192,
    min_side=15,
    max_side=8192,
    formats=frozenset({"jpeg", "png", "bmp", "tiff"}),
)


# APIG.0301 names its reason after a colon ("...: decrypt token fail"); only these
# fixed phrases are ever shown to the client, never anything derived from input.
_AUTH_REASONS = frozenset(
    {
        "x-auth-token not found",
        "decrypt token fail",
        "verify aksk signature fail",
        "unsupported signature algorithm",
        "request expired",
        "invalid x-sdk-date",
        "ak not found",
    }
)

# Card kinds from the BIN table -> the words Huawei's `type` uses (借记卡, 信用卡, 准贷记卡, 预付费卡).
_CARD_TYPES = {"借记卡": "借记卡", "贷记卡": "信用卡", "信用卡": "信用卡", "准贷记卡": "准贷记卡", "预付费卡": "预付费卡"}


# --- tokens ---------------------------------------------------------------------


def token_matches(token: str, tokens: list[str]) -> bool:
    """Constant-time membership: every configured token is compared."""
    given = token.strip().encode()
    found = False
    for candidate in tokens:
        found |= hmac.compare_digest(given, candidate.encode())
    return found


# --- rendering helpers ------------------------------------------------------------


def spaced_number(reading: CardReading) -> str:
    """The number grouped as printed ("6217 0000 1003 0385 457"), else in fours."""
    printed = " ".join(reading.number_printed.split())
    if printed and printed.replace(" ", "") == reading.number and " " in printed:
        return printed
    digits = reading.number
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _conf(value: float) -> float:
    return round(max(0.0, min(1.0, float(value))), 4)


def _points(quad) -> list[list[int]]:
    return [[int(round(x)), int(round(y))] for x, y in quad]


def _json(payload: dict[str, Any], status: int, request_id: str) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(
        body,
        status_code=status,
        media_type="application/json;charset=utf-8",
        headers={"X-Request-Id": request_id},
    )


# --- the dialect ----------------------------------------------------------------


class Settings(DialectSettings):
    """[huawei]"""

    credentials: dict[str, Secret] = {}  # AK -> SK (SDK-HMAC-SHA256)
    tokens: list[Secret] = []  # accepted in X-Auth-Token

    def has_credentials(self) -> bool:
        return bool(self.credentials or self.tokens)


CONSOLE_PROJECT_ID = "0123456789abcdef0123456789abcdef"  # the console's example project (any id is served)
# huaweicloudsdkocr pointed at the gateway (README.md); shown by the console.
SDK_SNIPPET = """\
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkocr.v1 import OcrClient, RecognizeBankcardRequest, BankcardRequestBody

client = (OcrClient.new_builder()
          .with_credentials(BasicCredentials("AK", "SK", project_id))
          .with_endpoints(["{base_url}"]).build())
b64 = base64.b64encode(open("card.jpg", "rb").read()).decode()
resp = client.recognize_bankcard(RecognizeBankcardRequest(body=BankcardRequestBody(image=b64)))
resp.result.card_number, resp.x_request_id
"""


class HuaweiDialect:
    name = NAME
    limits = LIMITS

    def __init__(self, settings: Settings, allow_unsigned: bool):
        self.credentials: dict[str, str] = dict(settings.credentials)
        self.tokens: list[str] = list(settings.tokens)
        # Open only when nothing at all is configured for this vendor and the
        # operator allows unsigned requests (loopback binding or --insecure).
        self.open = allow_unsigned and not self.credentials and not self.tokens

    def routes(self) -> list[tuple[str, list[str]]]:
        return [(ROUTE_PATH, ["POST"]), (PREFIX + ROUTE_PATH, ["POST"])]

    def owns_path(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/") or bool(re.match(r"^/v2/[^/]+/ocr(/|$)", path))

    def new_request_id(self) -> str:
        return uuid.uuid4().hex

    def authenticate(self, req: IncomingRequest, now: float) -> str | None:
        if self.open:
            return None
        authorization = req.header("authorization")
        if authorization is not None and authorization.strip():
            return verify_aksk(req, self.credentials, now)
        token = req.header("x-auth-token")
        if token is None or not token.strip():
            raise HuaweiError("APIG.0301", "x-auth-token not found")
        if not token_matches(token, self.tokens):
            raise HuaweiError("APIG.0301", "decrypt token fail")
        return "token"

    def parse(self, req: IncomingRequest) -> EngineCall:
        try:
            body = parse_json(req.body, loads=msgspec.json.decode) if req.body else None
        except gw.BadJSONError as exc:
            raise HuaweiError("ModelArts.4105", f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise HuaweiError("ModelArts.4105", "body is not a JSON object")
        image, url = body.get("image"), body.get("url")
        for field, value in (("image", image), ("url", url)):
            if value is not None and not isinstance(value, str):
                raise HuaweiError("AIS.0101", f"{field} is not a string")
        image = image or None
        url = (url or "").strip() or None
        if image and url:
            raise HuaweiError("AIS.0101", "both image and url given")  # the doc: one or the other
        if not image and not url:
            raise HuaweiError("AIS.0101", "neither image nor url given")
        want_location = body.get("return_text_location", False)
        if not isinstance(want_location, bool):
            raise HuaweiError("AIS.0101", "return_text_location is not a boolean")
        source = ImageSource(url=url) if url else ImageSource(data=decode_base64_strict(image))
        options = ReadOptions(max_pixels=LIMITS.max_pixels, min_side=LIMITS.min_side, want_issue_date=True)  # the one dialect that reports it
        return EngineCall(
            image=source,
            options=options,
            context={"return_text_location": want_location, "project_id": req.path_params.get("project_id")},
        )

    def render(self, call: EngineCall, reading: CardReading, request_id: str, elapsed_ms: float) -> Response:
        bank = reading.bank
        bank_name = (bank.bank_name if bank else None) or ""
        card_type = _CARD_TYPES.get((bank.card_kind if bank else None) or "", "")
        number_conf = _conf(reading.number_confidence)
        result: dict[str, Any] = {
            "bank_name": bank_name,
            "card_number": spaced_number(reading),
            "issue_date": reading.issue_date.text if reading.issue_date else "",
            "expiry_date": reading.expiry.text if reading.expiry else "",
            "type": card_type,
            # bank and type come from the BIN table, so they are as sure as the number they were looked up by.
            "confidence": {
                "bank_name": number_conf if bank_name else 0,
                "card_number": number_conf,
                "issue_date": _conf(reading.issue_date.confidence) if reading.issue_date else 0,
                "expiry_date": _conf(reading.expiry.confidence) if reading.expiry else 0,
                "type": number_conf if card_type else 0,
            },
        }
        if call.context.get("return_text_location"):
            location: dict[str, Any] = {"card_number": _points(reading.number_quad)}
            if reading.issue_date:
                location["issue_date"] = _points(reading.issue_date.quad)
            if reading.expiry:
                location["expiry_date"] = _points(reading.expiry.quad)
            result["text_location"] = location
        return _json({"result": result}, 200, request_id)

    def render_error(self, exc: Exception, request_id: str, req: IncomingRequest | None = None) -> Response:
        try:
            entry = ERRORS.for_exception(exc)
            code, status, message = entry.code, entry.status, entry.message
            if code == "APIG.0301" and isinstance(exc, VendorError) and exc.detail in _AUTH_REASONS:
                message = f"{message.rstrip('.')}: {exc.detail}"
        except Exception:  # never let an error page fail
            log.exception("huawei: rendering %r failed", exc)
            status, code, message = 500, "ModelArts.4505", ERRORS["ModelArts.4505"].message
        return _json({"error_code": code, "error_msg": message}, status, request_id)

    def error_code(self, exc: Exception) -> str:
        return error_code_for(exc)

    # --- console (gateway/console) ---

    def auth_mode(self) -> str:
        return auth_mode_of(self.open, signed=bool(self.credentials), token=bool(self.tokens))

    def console_request(self, image: bytes, asks: ReadOptions) -> IncomingRequest:
        """What huaweicloudsdkocr sends: a JSON body with the image; this API has no option flags."""
        project_id = CONSOLE_PROJECT_ID
        body = json.dumps({"image": base64.b64encode(image).decode("ascii")}).encode("ascii")
        return console_request("POST", ROUTE_PATH.replace("{project_id}", project_id),
                               {"Content-Type": "application/json;charset=UTF-8"}, body, path_params={"project_id": project_id})

    def sdk_snippet(self, base_url: str) -> str:
        return SDK_SNIPPET.replace("{base_url}", base_url)




def create(settings: Settings | dict, allow_unsigned: bool) -> HuaweiDialect:
    return HuaweiDialect(settings_from(settings, Settings, NAME), allow_unsigned)
