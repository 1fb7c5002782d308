"""Tencent Cloud API 3.0 `BankCardOCR` (ocr, Version 2018-11-19): `POST /` and `GET /`.

Wire contract: vendor-specs/tencent-api3-BankCardOCR.txt and clients/README.md §1
(tencentcloud-sdk-python-ocr). Also served under the `/tencent/` prefix.

Auth (adapters/tencent_auth.py): TC3-HMAC-SHA256 (`Authorization` header; POST
JSON, GET query, and the `X-TC-Content-SHA256: UNSIGNED-PAYLOAD` variant) and the
legacy HmacSHA1 / HmacSHA256 signatures carried in the form body (POST) or query
string (GET), recomputed over the bytes as received; the client's timestamp must
be within 300 s of our clock.

Every answer is HTTP 200 with `Content-Type: application/json` exactly: a
charset makes the SDK skip its error check and return an empty success model.
Errors are `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.

The error table, every code and the neutral failures each answers, is adapters/tencent_errors.py.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from adapters.base import DialectSettings, Secret, auth_mode_of, settings_from
from core.limits import ImageLimits
from core.request import EngineCall, ImageSource, IncomingRequest, console_request
from adapters.tencent_errors import ERRORS, TencentError, error_code_for
from adapters.tencent_auth import (  # noqa: F401  (tc3_* and legacy_* are this dialect's API too)
    legacy_signature,
    legacy_string_to_sign,
    tc3_canonical_requests,
    tc3_signature,
    verify_legacy,
    verify_tc3,
)
from engine.types import (
    WARN_BORDER_INCOMPLETE,
    WARN_INVALID_DATE,
    WARN_PHOTOCOPY,
    WARN_REFLECTION,
    WARN_RESHOOT,
    CardReading,
    ReadOptions,
)
from core.errors import BadJSONError
from core.body import media_type, parse_json
from core.strict_base64 import decode_base64_strict

log = logging.getLogger("cardgate.tencent")

NAME = "tencent"
PREFIX = "/tencent"
ACTION = "BankCardOCR"
VERSION = "2018-11-19"

# The doc: ImageBase64 at most 7 MB after base64 (so the downloaded image too:
# 7 MB of base64 is 5.25 MB of image), download within 3 s, PNG/JPG/JPEG/BMP,
# GIF refused. The doc gives no pixel limits for BankCardOCR; the sibling OCR
# APIs of the same version document "each side between 20 and 10000 px", which
# we adopt. API 3.0 caps a POST body at 10 MB (RequestSizeLimitExceeded).
BASE64_MAX = 7 * 1024 * 1024
LIMITS = ImageLimits(
    max_body_bytes=10 * 1024 * 1024,
    max_image_bytes=BASE64_MAX * 3 // 4,
    fetch_timeout_s=3.0,
    max_pixels=40_000_000,
    min_side=20,
    max_side=10000,
    formats=frozenset({"jpeg", "png", "bmp"}),
)

LANG_ZH = "zh-CN"
LANG_EN = "en-US"

# Engine warning names -> WarningCode values of the doc.
WARNING_CODES: dict[str, int] = {
    WARN_INVALID_DATE: -9110,
    WARN_BORDER_INCOMPLETE: -9111,
    WARN_REFLECTION: -9112,
    WARN_PHOTOCOPY: -9113,
    WARN_RESHOOT: -9114,
}


# --- request parameters ---------------------------------------------------------


def _form(raw: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded (body or query) -> dict; blank values kept."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, errors="strict", max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise TencentError("InvalidParameter", f"undecodable form: {exc}") from None
    return dict(pairs)


def form_params(req: IncomingRequest) -> dict[str, str] | None:
    """The form-encoded parameters (GET query, or POST urlencoded body); None for a JSON body."""
    if req.method in ("GET", "HEAD"):
        return _form(req.query_string)
    if media_type(req.header("content-type"))[0] == "application/x-www-form-urlencoded":
        return _form(req.body)
    return None


def request_params(req: IncomingRequest) -> dict[str, Any]:
    """The action's parameters, wherever this request style puts them."""
    form = form_params(req)
    if form is not None:
        return form
    media = media_type(req.header("content-type"))[0]
    if media not in ("application/json", ""):
        raise TencentError("InvalidParameter", f"unsupported Content-Type {media!r}")
    if not req.body.strip():
        return {}
    try:
        params = parse_json(req.body)
    except BadJSONError as exc:
        raise TencentError("InvalidParameter", f"body is not JSON: {exc}") from None
    if not isinstance(params, dict):
        raise TencentError("InvalidParameter", "body is not a JSON object")
    return params


def language(req: IncomingRequest | None) -> str:
    """en-US when the client asks for it (X-TC-Language, or the legacy Language param), else zh-CN."""
    if req is None:
        return LANG_ZH
    value = req.header("x-tc-language")
    if value is None:
        try:
            value = (form_params(req) or {}).get("Language")
        except TencentError:
            value = None
    return LANG_EN if isinstance(value, str) and value.strip().lower() == "en-us" else LANG_ZH


# --- rendering -------------------------------------------------------------------


def json_response(payload: dict[str, Any]) -> Response:
    """HTTP 200, `Content-Type: application/json` with no charset (the SDK needs it exact)."""
    body = json.dumps({"Response": payload}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=200, media_type="application/json")


def error_response(code: str, request_id: str, lang: str) -> Response:
    entry = ERRORS[code]
    message = entry.message_en if lang == LANG_EN else entry.message
    return json_response({"Error": {"Code": code, "Message": message}, "RequestId": request_id})


def valid_date(reading: CardReading) -> str:
    """The engine's "MM/YY" as the doc's "MM/YYYY"; "" when no date was read."""
    if reading.expiry is None:
        return ""
    match = re.fullmatch(r"\s*(\d{2})/(\d{2}|\d{4})\s*", reading.expiry.text)
    if not match:
        return ""
    month, year = match.groups()
    return f"{month}/{'20' + year if len(year) == 2 else year}"


def bank_info(reading: CardReading, lang: str) -> str:
    """ "招商银行(03080000)"; in en-US "China Merchants Bank (03080000)" as the English doc shows."""
    bank = reading.bank
    if bank is None:
        return ""
    name = (bank.bank_name_en if lang == LANG_EN else None) or bank.bank_name or ""
    if not bank.institution_code:
        return name
    if lang == LANG_EN:
        return f"{name} ({bank.institution_code})".strip()
    return f"{name}({bank.institution_code})"


def warning_codes(reading: CardReading) -> list[int]:
    codes: list[int] = []
    for warning in reading.warnings:
        code = WARNING_CODES.get(warning)
        if code is not None and code not in codes:
            codes.append(code)
    return codes


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data else None


def _flag(params: dict[str, Any], name: str) -> bool:
    """A Boolean parameter: JSON true/false (TC3 POST), "True"/"False" strings (GET and legacy)."""
    value = params.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise TencentError("InvalidParameter", f"{name} is not a Boolean")


def _string(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TencentError("InvalidParameter", f"{name} is not a String")
    return value


# --- the dialect -----------------------------------------------------------------

# tencentcloud-sdk-python-ocr pointed at the gateway (README.md); shown by the console.
SDK_SNIPPET = """\
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ocr.v20181119 import ocr_client, models

hp = HttpProfile(protocol="{scheme}", endpoint="{host}")   # no scheme in endpoint: it is the signed Host
client = ocr_client.OcrClient(credential.Credential("SECRET_ID", "SECRET_KEY"),
                              "ap-guangzhou", ClientProfile(httpProfile=hp))
req = models.BankCardOCRRequest()
req.ImageBase64 = base64.b64encode(open("card.jpg", "rb").read()).decode()
resp = client.BankCardOCR(req)          # resp.CardNo, resp.BankInfo, resp.ValidDate, resp.RequestId
"""


class Settings(DialectSettings):
    """[tencent]"""

    credentials: dict[str, Secret] = {}  # SecretId -> SecretKey

    def has_credentials(self) -> bool:
        return bool(self.credentials)


class TencentDialect:
    name = NAME
    limits = LIMITS

    def __init__(self, settings: Settings, allow_unsigned: bool):
        self.credentials: dict[str, str] = dict(settings.credentials)
        # Open only when no key is configured and the operator allows unsigned
        # requests (loopback binding or --insecure): then signatures are not checked.
        self.open = allow_unsigned and not self.credentials

    def routes(self) -> list[tuple[str, list[str]]]:
        methods = ["GET", "POST"]
        return [("/", methods), (PREFIX, methods), (PREFIX + "/", methods)]

    def owns_path(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    def new_request_id(self) -> str:
        return str(uuid.uuid4())

    def authenticate(self, req: IncomingRequest, now: float) -> str | None:
        if self.open:
            return None
        authorization = (req.header("authorization") or "").strip()
        if authorization.startswith("TC3-HMAC-SHA256"):
            return verify_tc3(req, self.credentials, now)
        form = form_params(req)
        if form is not None and ("Signature" in form or "SecretId" in form):
            return verify_legacy(req, form, self.credentials, now)
        raise TencentError("AuthFailure.InvalidAuthorization", "no signature")

    def parse(self, req: IncomingRequest) -> EngineCall:
        params = request_params(req)
        action = req.header("x-tc-action") or _string(params, "Action")
        if not action:
            raise TencentError("MissingParameter", "Action")
        if action.strip() != ACTION:
            raise TencentError("InvalidAction", "unknown action")
        version = req.header("x-tc-version") or _string(params, "Version")
        if not version:
            raise TencentError("MissingParameter", "Version")
        if version.strip() != VERSION:
            raise TencentError("NoSuchVersion", "unknown version")

        url = _string(params, "ImageUrl").strip()
        image_b64 = _string(params, "ImageBase64")
        if url:  # the doc: when both are given, only ImageUrl is used
            source = ImageSource(url=url)
        elif image_b64:
            if len(image_b64) > BASE64_MAX:
                raise TencentError("LimitExceeded.TooLargeFileError", f"ImageBase64 of {len(image_b64)} chars")
            source = ImageSource(data=decode_base64_strict(image_b64))
        else:
            raise TencentError("InvalidParameter", "ImageBase64 or ImageUrl is required")

        border_check = _flag(params, "EnableBorderCheck")
        options = ReadOptions(
            want_border_cut_image=_flag(params, "RetBorderCutImage"),
            want_card_no_image=_flag(params, "RetCardNoImage"),
            check_copy=_flag(params, "EnableCopyCheck"),
            check_reshoot=_flag(params, "EnableReshootCheck"),
            check_border=border_check,
            # -9112 (reflection) has no flag of its own in this API version; a
            # glare over the edge or number is what the border check reports.
            check_reflection=border_check,
            want_quality=_flag(params, "EnableQualityValue"),
            max_pixels=LIMITS.max_pixels,
            min_side=LIMITS.min_side,
        )
        return EngineCall(image=source, options=options, context={"language": language(req)})

    def render(self, call: EngineCall, reading: CardReading, request_id: str, elapsed_ms: float) -> Response:
        lang = call.context.get("language", LANG_ZH)
        if not reading.number_valid:  # Luhn or length does not fit the BIN: never hand out a wrong number
            return error_response("FailedOperation.IllegalBankCardError", request_id, lang)
        bank = reading.bank
        options = call.options
        return json_response(
            {
                "CardNo": reading.number,
                "BankInfo": bank_info(reading, lang),
                "ValidDate": valid_date(reading),
                "CardType": (bank.card_kind if bank else None) or "",
                "CardName": (bank.card_name if bank else None) or "",
                "BorderCutImage": _b64(reading.border_cut_jpeg) if options.want_border_cut_image else None,
                "CardNoImage": _b64(reading.card_no_jpeg) if options.want_card_no_image else None,
                "WarningCode": warning_codes(reading),
                "QualityValue": reading.quality if options.want_quality else None,
                "RequestId": request_id,
            }
        )

    def render_error(self, exc: Exception, request_id: str, req: IncomingRequest | None = None) -> Response:
        try:
            return error_response(error_code_for(exc), request_id, language(req))
        except Exception:  # never let an error page fail
            log.exception("tencent: rendering %r failed", exc)
            return error_response("InternalError", request_id, LANG_ZH)

    def error_code(self, exc: Exception) -> str:
        return error_code_for(exc)

    # --- console (gateway/console) ---

    def auth_mode(self) -> str:
        return auth_mode_of(self.open, signed=True, token=False)

    def console_request(self, image: bytes, asks: ReadOptions) -> IncomingRequest:
        """What tencentcloud-sdk-python sends: TC3 JSON POST, the action in X-TC-* headers."""
        params = {
            "ImageBase64": base64.b64encode(image).decode("ascii"),
            "RetBorderCutImage": asks.want_border_cut_image,
            "RetCardNoImage": asks.want_card_no_image,
            "EnableBorderCheck": asks.check_border,
            "EnableCopyCheck": asks.check_copy,
            "EnableReshootCheck": asks.check_reshoot,
            "EnableQualityValue": asks.want_quality,
        }
        headers = {"Content-Type": "application/json", "X-TC-Action": ACTION, "X-TC-Version": VERSION,
                   "X-TC-Language": LANG_ZH}
        return console_request("POST", "/", headers, json.dumps(params).encode("ascii"))

    def sdk_snippet(self, base_url: str) -> str:
        scheme, _, host = base_url.partition("://")
        return SDK_SNIPPET.replace("{scheme}", scheme).replace("{host}", host)


def create(settings: Settings | dict, allow_unsigned: bool) -> TencentDialect:
    return TencentDialect(settings_from(settings, Settings, NAME), allow_unsigned)
