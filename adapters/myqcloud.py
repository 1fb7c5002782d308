"""Tencent legacy "myqcloud" bank card OCR: `POST /ocr/bankcard` (JSON or multipart).

Wire contract: vendor-specs/tencent-legacy-myqcloud-bankcard.md and
clients/README.md §2. Also served under `/myqcloud/ocr/bankcard`.

Auth is the multi-use signature in the `authorization` header (adapters/myqcloud_auth.py),
checked over the embedded plaintext exactly as sent. Then: expiry
(`e`, a little grace for skew), the signing app is configured and owns the
SecretId, the body's `appid` is the signed `a`, the body's `bucket` is the signed
`b` when both are given. `e=0` marks a single-use signature: accepted once,
within SINGLE_USE_WINDOW_S of its `t`, then refused as a replay (code 13).

Answers are HTTP 200 `{"code", "message", "data"}`; success has
`data.session_id` and `data.items`. Codes of the doc's table that no request can
reach here: 7/200/201/203 (internal signing and packing failures of the real
service; 8, "signature decode failed", answers a header that is not base64), 14 (the doc names no case apart from 5's, and we answer 5 for an HMAC
mismatch as the clients reference does) and 19 (one image per call).
-1308 (URL download failed) is from the general myqcloud code table the doc
links to.
"""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.responses import Response

from adapters.base import DialectSettings, Secret, auth_mode_of, numeric_request_id, settings_from
from core.limits import ImageLimits
from core.request import EngineCall, ImageSource, IncomingRequest, console_request
from adapters.error_table import ErrorEntry
from adapters.myqcloud_errors import ERRORS, MyqcloudError, error_code_for
from adapters.myqcloud_auth import SINGLE_USE_WINDOW_S, decode_signature, verify  # noqa: F401  (decode_signature: this dialect's API too)
from engine.types import CardReading, Quad, ReadOptions
from core import errors as gw
from core.body import BadFormError, TooManyPartsError, media_type, parse_json, parse_multipart
from core.strict_base64 import decode_base64_strict
from core.replay import ReplayStore

log = logging.getLogger("cardgate.myqcloud")

NAME = "myqcloud"
ROUTE_PATH = "/ocr/bankcard"
PREFIX = "/myqcloud"

MAX_URL_CHARS = 2048  # our bound for -1304 (parameter too long); the doc gives no number

# The doc: each request body at most 6 MB, no GIF. (Its generic code 20 still
# speaks of 1 MB per file, an older limit of the image service; the body limit
# of the bank card page is the one we apply, to uploads and downloads alike.)
BODY_MAX = 6 * 1024 * 1024
LIMITS = ImageLimits(
    max_body_bytes=BODY_MAX,
    max_image_bytes=BODY_MAX,
    fetch_timeout_s=3.0,  # not documented; the same as the API 3.0 service
    max_pixels=40_000_000,
    formats=frozenset({"jpeg", "png", "bmp"}),
)

SUCCESS_MESSAGE = "OK"  # code 0; the error codes are adapters/myqcloud_errors.py


ITEM_NUMBER, ITEM_KIND, ITEM_NAME, ITEM_BANK, ITEM_EXPIRY = "卡号", "卡类型", "卡名字", "银行信息", "有效期"


# --- the body --------------------------------------------------------------------


@dataclass
class Form:
    """The fields of a request body, JSON or multipart."""

    fields: dict[str, str]  # appid, bucket, url, image (base64, JSON only)
    image_file: bytes | None = None  # multipart `image` part
    has_image_file: bool = False


def read_form(req: IncomingRequest) -> Form:
    media = media_type(req.header("content-type"))[0]
    if media == "multipart/form-data":
        return _read_multipart(req)
    if media in ("application/json", "text/json", ""):  # the older doc says text/json
        return _read_json(req.body)
    raise MyqcloudError("3", f"unsupported Content-Type {media!r}")


def _read_json(body: bytes) -> Form:
    try:
        data = parse_json(body)
    except gw.BadJSONError as exc:
        raise MyqcloudError("3", f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MyqcloudError("3", "body is not a JSON object")
    fields: dict[str, str] = {}
    for name in ("appid", "bucket", "url", "image"):
        value = data.get(name)
        if value is None:
            continue
        if name == "appid" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # hand-written clients send the appid as a number too
        if not isinstance(value, str):
            raise MyqcloudError("21", f"{name} is not a string")
        fields[name] = value
    return Form(fields=fields)


MAX_PARTS = 16  # appid, bucket, url, image and room for a client's extras; more is code 21


def _read_multipart(req: IncomingRequest) -> Form:
    try:
        parts = parse_multipart(req.body, req.header("content-type"), max_parts=MAX_PARTS)
    except TooManyPartsError:
        raise MyqcloudError("21", "too many parts") from None
    except BadFormError as exc:
        raise MyqcloudError("3", str(exc)) from None
    form = Form(fields={})
    for name, data in parts:
        if name == "image":
            form.image_file, form.has_image_file = data, True
        elif name in ("appid", "bucket", "url"):
            try:
                form.fields[name] = data.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise MyqcloudError("21", f"{name} is not UTF-8") from None
    return form


# --- rendering -------------------------------------------------------------------


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def quad_coord(quad: Quad | None) -> dict[str, int]:
    """The axis-aligned box around a quad, as the doc's itemcoord."""
    if quad is None:
        return {"x": 0, "y": 0, "width": 0, "height": 0}
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    x, y = int(round(min(xs))), int(round(min(ys)))
    return {"x": x, "y": y, "width": int(round(max(xs))) - x, "height": int(round(max(ys))) - y}


def _item(name: str, text: str, conf: float, quad: Quad | None) -> dict[str, Any]:
    return {
        "item": name,
        "itemcoord": quad_coord(quad),
        "itemconf": round(float(conf), 6),
        "itemstring": text,
        "coords": [],
        "words": [],
        "candword": [],
    }


def expiry_text(reading: CardReading) -> str:
    """"MM/YY" -> "MM/YYYY", as in the doc's example ("08/2008")."""
    if reading.expiry is None:
        return ""
    month, _, year = reading.expiry.text.strip().partition("/")
    if not (month.isdigit() and year.isdigit()):
        return ""
    return f"{month}/{'20' + year if len(year) == 2 else year}"


def items(reading: CardReading) -> list[dict[str, Any]]:
    bank = reading.bank
    # Type, name and bank come from the BIN table: no place on the card, and as
    # sure as the number they were looked up by.
    conf = reading.number_confidence
    bank_text = ""
    if bank is not None and bank.bank_name:
        bank_text = f"{bank.bank_name}({bank.institution_code})" if bank.institution_code else bank.bank_name
    return [
        _item(ITEM_NUMBER, reading.number, conf, reading.number_quad),
        _item(ITEM_KIND, (bank.card_kind if bank else None) or "", conf if bank and bank.card_kind else 0.0, None),
        _item(ITEM_NAME, (bank.card_name if bank else None) or "", conf if bank and bank.card_name else 0.0, None),
        _item(ITEM_BANK, bank_text, conf if bank_text else 0.0, None),
        _item(
            ITEM_EXPIRY,
            expiry_text(reading),
            reading.expiry.confidence if reading.expiry else 0.0,
            reading.expiry.quad if reading.expiry else None,
        ),
    ]


# --- the dialect -----------------------------------------------------------------


class App(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """[myqcloud.apps.<appid>]"""

    secret_id: Secret
    secret_key: Secret
    buckets: frozenset[str] = frozenset()  # the signed bucket must be one of these; empty: any bucket


class Settings(DialectSettings):
    """[myqcloud]"""

    apps: dict[str, App] = {}  # appid -> its key pair

    def has_credentials(self) -> bool:
        return bool(self.apps)


CONSOLE_APPID = "1250000000"  # the console's example appid when none is configured
# qcloud-image's signer and requests, pointed at the gateway (README.md); shown by the console.
SDK_SNIPPET = """\
from qcloud_image.auth import Auth
sign = Auth("APPID", "SECRET_ID", "SECRET_KEY").get_sign("bucket")
b64 = base64.b64encode(open("card.jpg", "rb").read()).decode()
requests.post("{base_url}/ocr/bankcard", headers={"Authorization": sign},
              json={"appid": "APPID", "bucket": "bucket", "image": b64})
"""


class MyqcloudDialect:
    name = NAME
    limits = LIMITS

    def __init__(self, settings: Settings, allow_unsigned: bool):
        self.apps: dict[str, App] = dict(settings.apps)
        # Open only when no app is configured and the operator allows unsigned requests.
        self.open = allow_unsigned and not self.apps
        self.replays = ReplayStore(":memory:")  # the gateway's shared one replaces it

    def use_replay_store(self, store: ReplayStore) -> None:
        self.replays = store

    def routes(self) -> list[tuple[str, list[str]]]:
        return [(ROUTE_PATH, ["POST"]), (PREFIX + ROUTE_PATH, ["POST"])]

    def owns_path(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/") or path.startswith("/ocr/")

    def new_request_id(self) -> str:
        # The doc's session_id is a string of 17 digits ("10000011579925413"); clients that match
        # or store it as a number would break on a letter, so it stays digits, failing Luhn.
        return numeric_request_id(10**16, 10**17)

    def authenticate(self, req: IncomingRequest, now: float) -> str | None:
        if self.open:
            return None
        header = (req.header("authorization") or "").strip()
        if not header:
            raise MyqcloudError("4", "no authorization header")
        sign = verify(header, self.apps, now)
        app = self.apps[sign.get("a")]

        form = read_form(req)
        appid = form.fields.get("appid", "").strip()
        if not appid:
            raise MyqcloudError("-1301", "appid missing")
        if appid != sign.get("a"):
            raise MyqcloudError("12", "body appid is not the signed appid")
        bucket, signed_bucket = form.fields.get("bucket", "").strip(), sign.get("b")
        if bucket and signed_bucket and bucket != signed_bucket:
            raise MyqcloudError("6", "body bucket is not the signed bucket")
        if app.buckets and signed_bucket and signed_bucket not in app.buckets:
            raise MyqcloudError("16", "bucket not configured")

        # Kept until its window ends (verify() refuses it after that anyway).
        if sign.single_use and self.replays.seen_before(f"{NAME}:{sign.digest.hex()}",
                                                        sign.signed_at + SINGLE_USE_WINDOW_S - now, now):
            raise MyqcloudError("13", "single-use signature replayed")
        return sign.get("k")

    def parse(self, req: IncomingRequest) -> EngineCall:
        form = read_form(req)
        appid = form.fields.get("appid", "").strip()
        if not appid:
            raise MyqcloudError("-1301", "appid missing")
        url = form.fields.get("url")
        image_b64 = form.fields.get("image")
        if url is not None and url.strip():  # the doc: url wins when both are given
            url = url.strip()
            if len(url) > MAX_URL_CHARS:
                raise MyqcloudError("-1304", "url too long")
            source = ImageSource(url=url)
        elif form.has_image_file:
            if not form.image_file:
                raise MyqcloudError("-1300", "empty image part")
            source = ImageSource(data=form.image_file)
        elif image_b64 is not None:
            if not image_b64.strip():
                raise MyqcloudError("-1300", "empty image")
            source = ImageSource(data=decode_base64_strict(image_b64))
        elif url is not None:
            raise MyqcloudError("17", "empty url")
        else:
            raise MyqcloudError("18", "neither image nor url")
        options = ReadOptions(max_pixels=LIMITS.max_pixels, min_side=LIMITS.min_side)
        return EngineCall(image=source, options=options, context={"appid": appid})

    def render(self, call: EngineCall, reading: CardReading, request_id: str, elapsed_ms: float) -> Response:
        if not reading.number_valid:  # Luhn or length does not fit the BIN: never hand out a wrong number
            return error_response(ERRORS["-9011"], request_id)
        return json_response(
            {"code": 0, "message": SUCCESS_MESSAGE, "data": {"session_id": request_id, "items": items(reading)}}
        )

    def render_error(self, exc: Exception, request_id: str, req: IncomingRequest | None = None) -> Response:
        try:
            return error_response(ERRORS.for_exception(exc), request_id)
        except Exception:  # never let an error page fail
            log.exception("myqcloud: rendering %r failed", exc)
            return error_response(ERRORS.fallback, request_id)

    def error_code(self, exc: Exception) -> int:
        return error_code_for(exc)

    # --- console (gateway/console) ---

    def auth_mode(self) -> str:
        return auth_mode_of(self.open, signed=True, token=False)

    def console_request(self, image: bytes, asks: ReadOptions) -> IncomingRequest:
        """A hand-written client's JSON POST (no SDK has this call): appid, bucket and the image;
        this API has no option flags. The appid is the first configured one, as a caller's would be."""
        appid = next(iter(self.apps), CONSOLE_APPID)
        body = {"appid": appid, "bucket": "bucket", "image": base64.b64encode(image).decode("ascii")}
        return console_request("POST", ROUTE_PATH, {"Content-Type": "application/json"}, json.dumps(body).encode("ascii"))

    def sdk_snippet(self, base_url: str) -> str:
        return SDK_SNIPPET.replace("{base_url}", base_url)


def error_response(entry: ErrorEntry, request_id: str) -> Response:
    return json_response({"code": entry.code, "message": entry.message, "data": {"session_id": request_id}}, entry.status)



def create(settings: Settings | dict, allow_unsigned: bool) -> MyqcloudDialect:
    return MyqcloudDialect(settings_from(settings, Settings, NAME), allow_unsigned)
