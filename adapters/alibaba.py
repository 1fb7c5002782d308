"""Alibaba Cloud OCR (ocr-api 2021-07-07) `RecognizeBankCard`: RPC style, `POST /`.

Wire contract: vendor-specs/alibaba-recognizebankcard.md and clients/README.md §5.2,
§11.4 (`alibabacloud-ocr-api20210707` for Python, `@alicloud/ocr-api20210707` for Node).
Also served under `/alibaba/`. Tencent's API 3.0 lives at `POST /` too: a request is
this dialect's when it carries `x-acs-*` headers, an `ACS3-` Authorization or
`Action=RecognizeBankCard` in the query (`claims`).

Auth: ACS3-HMAC-SHA256 over the headers named in `SignedHeaders` (adapters/alibaba_auth.py),
`x-acs-date` within 15 minutes of our clock, each `x-acs-signature-nonce` once per access
key while its date is inside that window (one store for all workers: core/replay.py).

The image is the raw body (chunked or not) or `?Url=`; the body wins when both come.
Success is HTTP 200 `{"RequestId", "Data"}` with `Data` a JSON *string*, as the SDKs
expect (they do not decode it). Errors are HTTP 4xx/5xx `{"RequestId", "HostId", "Code",
"Message", "Recommend"}`: an error in a 200 would not be raised by any SDK.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

from starlette.responses import Response

from adapters import alibaba_auth
from adapters.alibaba_errors import ERRORS, AlibabaError, error_code_for
from adapters.base import DialectSettings, Secret, auth_mode_of, settings_from
from core.limits import ImageLimits
from core.request import EngineCall, ImageSource, IncomingRequest, console_request
from engine.types import CardReading, Quad, ReadOptions
from core.replay import ReplayStore

log = logging.getLogger("cardgate.alibaba")

NAME = "alibaba"
PREFIX = "/alibaba"
ACTION = "RecognizeBankCard"
VERSION = "2021-07-07"
DEFAULT_HOST_ID = "ocr-api.cn-hangzhou.aliyuncs.com"
URL_MAX_CHARS = 2048

# The doc: the image at most 10 MB, each side > 15 px and < 8192 px. It lists GIF and WebP
# too, which this engine does not decode: they are refused as unsupportedImageFormat.
LIMITS = ImageLimits(
    max_body_bytes=10 * 1024 * 1024,
    max_image_bytes=10 * 1024 * 1024,
    fetch_timeout_s=5.0,
    max_pixels=40_000_000,
    min_side=16,
    max_side=8191,
    formats=frozenset({"jpeg", "png", "bmp", "tiff"}),
)


# BIN table card kind -> cardType.
CARD_TYPES: dict[str, str] = {"借记卡": "DC", "贷记卡": "CC", "准贷记卡": "SCC", "预付费卡": "PC"}


class Settings(DialectSettings):
    """[alibaba]"""

    credentials: dict[str, Secret] = {}  # AccessKeyId -> AccessKeySecret

    def has_credentials(self) -> bool:
        return bool(self.credentials)


def query_fields(req: IncomingRequest) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in parse_qsl(req.query_string.decode("latin-1"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


# --- answers ------------------------------------------------------------------------------


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json;charset=utf-8")


def error_response(code: str, request_id: str, host_id: str) -> Response:
    entry = ERRORS[code]
    status, message = entry.status, entry.message
    return json_response({
        "RequestId": request_id,
        "HostId": host_id,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=ocr-api&requestId={request_id}",
    }, status)


def valid_to_date(reading: CardReading) -> str:
    """The engine's "MM/YY" as "YYYY/MM"; "" when no date was read."""
    match = re.fullmatch(r"(\d{2})/(\d{2})", reading.expiry.text.strip()) if reading.expiry else None
    return f"20{match[2]}/{match[1]}" if match else ""


def _points(quad: Quad) -> list[dict[str, int]]:
    return [{"x": int(round(x)), "y": int(round(y))} for x, y in quad]


def data_document(reading: CardReading) -> dict[str, Any]:
    bank = reading.bank
    fields = {
        "bankName": (bank.bank_name if bank else None) or "",
        "cardNumber": reading.number,
        "validToDate": valid_to_date(reading),
        "cardType": CARD_TYPES.get((bank.card_kind if bank else None) or "", ""),
    }
    number_prob = int(round(reading.number_confidence * 100))
    # Bank name and card type come from the BIN table: they sit where the number is.
    positions = {"bankName": reading.number_quad, "cardNumber": reading.number_quad, "cardType": reading.number_quad}
    probs = {"bankName": number_prob, "cardNumber": number_prob, "cardType": number_prob}
    if reading.expiry is not None:
        positions["validToDate"] = reading.expiry.quad
        probs["validToDate"] = int(round(reading.expiry.confidence * 100))
    key_values = [
        {"key": key, "keyProb": 100, "value": value, "valuePos": _points(positions[key]) if key in positions else [],
         "valueProb": probs.get(key, 0)}
        for key, value in fields.items()
    ]
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = reading.card_quad
    return {
        "data": fields,
        "algo_version": "",
        "ftype": 0,
        "height": reading.rectified_size[1],
        "width": reading.rectified_size[0],
        "orgHeight": reading.image_size[1],
        "orgWidth": reading.image_size[0],
        "prism_keyValueInfo": key_values,
        "sliceRect": {name: int(round(v)) for name, v in
                      zip(("x0", "y0", "x1", "y1", "x2", "y2", "x3", "y3"), (x0, y0, x1, y1, x2, y2, x3, y3))},
    }


# --- the dialect -----------------------------------------------------------------------------


# alibabacloud-ocr-api20210707 pointed at the gateway (README.md); shown by the console.
SDK_SNIPPET = """\
from alibabacloud_ocr_api20210707.client import Client
from alibabacloud_ocr_api20210707.models import RecognizeBankCardRequest
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_util.models import RuntimeOptions

client = Client(Config(access_key_id="ACCESS_KEY_ID", access_key_secret="ACCESS_KEY_SECRET",
                       endpoint="{host}", protocol="{scheme}"))
resp = client.recognize_bank_card_with_options(RecognizeBankCardRequest(body=open("card.jpg", "rb")), RuntimeOptions())
json.loads(resp.body.data)["data"]["cardNumber"]      # Data is a JSON string, as from Alibaba
"""


class AlibabaDialect:
    name = NAME
    limits = LIMITS

    def __init__(self, settings: Settings, allow_unsigned: bool):
        self.credentials: dict[str, str] = dict(settings.credentials)
        # Open only when no key is configured and the operator allows unsigned requests.
        self.open = allow_unsigned and not self.credentials
        self.nonces = ReplayStore(":memory:")  # the gateway's shared one replaces it

    def use_replay_store(self, store: ReplayStore) -> None:
        self.nonces = store

    def routes(self) -> list[tuple[str, list[str]]]:
        return [("/", ["POST"]), (PREFIX, ["POST"]), (PREFIX + "/", ["POST"])]

    def owns_path(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    def claims(self, method: str, headers: Mapping[str, str], query: str) -> bool:
        if any(name.lower().startswith("x-acs-") for name in headers.keys()):
            return True
        if (headers.get("authorization") or "").strip().startswith("ACS3-"):
            return True
        return ("Action", ACTION) in parse_qsl(query, keep_blank_values=True)

    def new_request_id(self) -> str:
        return str(uuid.uuid4()).upper()

    def authenticate(self, req: IncomingRequest, now: float) -> str | None:
        if self.open:
            return None
        raw_path = req.raw_path.decode("latin-1") or "/"
        paths = [raw_path] if raw_path == "/" else [raw_path, "/"]  # under the prefix, either may be signed
        try:
            verified = alibaba_auth.verify(req.method, paths, req.query_string, req.headers, req.body,
                                           self.credentials.get, now)
        except alibaba_auth.AuthFailure as exc:
            raise AlibabaError(exc.code, exc.detail) from None
        # Recorded only once the signature holds, so nobody can burn another's nonces.
        # Hashed: the nonce is the client's text, of any length. Kept while the signature's date is in the window.
        nonce_key = hashlib.sha256(f"{verified.access_key_id}\n{verified.nonce}".encode()).hexdigest()
        if self.nonces.seen_before(f"{NAME}:{nonce_key}", verified.signed_at + alibaba_auth.WINDOW_S - now, now):
            raise AlibabaError("SignatureNonceUsed", "nonce replayed")
        return verified.access_key_id

    def parse(self, req: IncomingRequest) -> EngineCall:
        query = query_fields(req)
        action = (req.header("x-acs-action") or query.get("Action") or "").strip()
        version = (req.header("x-acs-version") or query.get("Version") or "").strip()
        if not action:
            raise AlibabaError("MissingAction", "no x-acs-action / Action")
        if action != ACTION:
            raise AlibabaError("InvalidApi.NotFound", "unknown action")
        if not version:
            raise AlibabaError("MissingVersion", "no x-acs-version / Version")
        if version != VERSION:
            raise AlibabaError("InvalidVersion", "unknown version")

        url = query.get("Url", "").strip()
        if req.body:
            source = ImageSource(data=req.body)
        elif url:
            if len(url) > URL_MAX_CHARS:
                raise AlibabaError("exceededImageUrlLength", f"{len(url)} characters")
            parts = urlsplit(url)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise AlibabaError("IllegalImageUrl", "not an http(s) URL")
            source = ImageSource(url=url)
        else:
            raise AlibabaError("imageUrlOrBodyEmpty", "no body and no Url")
        options = ReadOptions(max_pixels=LIMITS.max_pixels, min_side=LIMITS.min_side)
        return EngineCall(image=source, options=options)

    def render(self, call: EngineCall, reading: CardReading, request_id: str, elapsed_ms: float) -> Response:
        if not reading.number_valid:  # Luhn or length does not fit the BIN: never hand out a wrong number
            return error_response("illegalImageContent", request_id, DEFAULT_HOST_ID)
        data = json.dumps(data_document(reading), ensure_ascii=False, separators=(",", ":"))
        return json_response({"RequestId": request_id, "Data": data})

    def render_error(self, exc: Exception, request_id: str, req: IncomingRequest | None = None) -> Response:
        try:
            host = (req.header("host") if req is not None else None) or DEFAULT_HOST_ID
            return error_response(ERRORS.for_exception(exc).key, request_id, host)
        except Exception:  # never let an error page fail
            log.exception("alibaba: rendering %r failed", exc)
            return error_response("InternalError", request_id, DEFAULT_HOST_ID)

    def error_code(self, exc: Exception) -> str:
        return error_code_for(exc)

    # --- console (gateway/console) ---

    def auth_mode(self) -> str:
        return auth_mode_of(self.open, signed=True, token=False)

    def console_request(self, image: bytes, asks: ReadOptions) -> IncomingRequest:
        """What the Tea SDK sends: the image as the raw body, the action in x-acs-* headers."""
        headers = {"Content-Type": "application/octet-stream", "x-acs-action": ACTION, "x-acs-version": VERSION}
        return console_request("POST", "/", headers, image)

    def sdk_snippet(self, base_url: str) -> str:
        scheme, _, host = base_url.partition("://")
        return SDK_SNIPPET.replace("{scheme}", scheme).replace("{host}", host)



def create(settings: Settings | dict, allow_unsigned: bool) -> AlibabaDialect:
    return AlibabaDialect(settings_from(settings, Settings, NAME), allow_unsigned)
