"""Face++ bank card dialect: `POST /cardpp/beta/ocrbankcard` and `/cardpp/v1/ocrbankcard`.

Wire contract: vendor-specs/facepp-cardpp-beta-ocrbankcard.md and
clients/README.md §4 (python-facepp, the official PythonSDK, hand-written
`requests` callers). Fields arrive in the query string, an urlencoded form or
multipart parts (old official SDKs send `Content-Disposition: file` parts), and
are merged. Credentials are the plain `api_key` + `api_secret` fields, checked
against [facepp] credentials {key: secret}; keys listed in [facepp]
disabled_keys are refused with AUTHORIZATION_ERROR. Errors
are HTTP statuses with `{"time_used", "error_message", "request_id"}`, except
the 413 for oversize bodies, which is plain text (the table: adapters/facepp_errors.py).
"""
from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.responses import Response

from adapters.base import DialectSettings, Secret, VendorError, auth_mode_of, settings_from
from adapters.facepp_errors import ERRORS, NOTHING_READ, PLAIN_TEXT, FaceppError, error_code_for
from core.limits import ImageLimits
from core.request import EngineCall, ImageSource, IncomingRequest, console_request
from engine.types import CardReading, ReadOptions
from core import errors as gw
from core.body import BadFormError, media_type, parse_form, parse_multipart
from core.strict_base64 import decode_base64_strict

log = logging.getLogger("cardgate.facepp")

NAME = "facepp"
PREFIX = "/facepp"
VERSIONS = ("beta", "v1")  # v1 cards add `bank` and `organization`

# The doc: JPG/PNG, file at most 2 MB, 100x100 .. 4096x4096 px, short side >= 100;
# requests over 2 MB are refused with a plain-text 413.
_TWO_MB = 2 * 1024 * 1024
LIMITS = ImageLimits(
    max_body_bytes=_TWO_MB,
    max_image_bytes=_TWO_MB,
    fetch_timeout_s=10.0,  # not documented (IMAGE_DOWNLOAD_TIMEOUT exists); our choice
    max_pixels=4096 * 4096,
    min_side=100,
    max_side=4096,
    formats=frozenset({"jpeg", "png"}),
)

IMAGE_FIELDS = ("image_file", "image_base64", "image_url")  # the doc's precedence: file > base64 > url
MISSING_IMAGE = "image_url, image_file, image_base64"  # as in the doc's example error

_PARAM_ERRORS = {"IMAGE_ERROR_UNSUPPORTED_FORMAT", "INVALID_IMAGE_SIZE", "IMAGE_FILE_TOO_LARGE", "BAD_ARGUMENTS"}
DENIED_BY_ADMIN = "Denied by Admin"  # one of the doc's AUTHORIZATION_ERROR reasons

# BIN table networks -> the v1 `organization` names.
_ORGANIZATIONS = {"unionpay": "union", "mastercard": "master", "visa": "visa", "jcb": "jcb"}


# --- request fields ---------------------------------------------------------------


class Fields:
    """Every field of one request, merged: query string first, then the body's (which win)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def add(self, name: str, value: bytes, *, override: bool) -> None:
        if override or name not in self.values:
            self.values[name] = value

    def raw(self, name: str) -> bytes | None:
        return self.values.get(name)


# Where the parsed fields of a request are kept: authenticate, parse and render_error all
# need them, and parsing a 2 MB form costs ~10 ms, so each request is parsed once.
_FIELDS_ATTR = "_facepp_fields"


def request_fields(req: IncomingRequest) -> Fields:
    """The request's fields, parsed on first use and kept on the request object.

    One IncomingRequest belongs to one request, so no lock is needed: at worst two
    threads would parse the same bytes to the same result. A malformed body is not
    kept; it raises again on the next call.
    """
    fields = getattr(req, _FIELDS_ATTR, None)
    if fields is None:
        fields = parse_fields(req)
        setattr(req, _FIELDS_ATTR, fields)
    return fields


def parse_fields(req: IncomingRequest) -> Fields:
    """Parse the query string and body into Fields (linear in the body size)."""
    fields = Fields()
    for name, value in parse_qsl(req.query_string.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
        fields.add(name, value.encode("latin-1"), override=False)
    content_type = req.header("content-type", "") or ""
    media = media_type(content_type)[0]
    if media == "multipart/form-data":
        try:
            body_parts = parse_multipart(req.body, content_type, max_header_count=32, max_header_size=16384)
        except BadFormError:
            raise FaceppError("BAD_ARGUMENTS", "multipart") from None
    elif media == "application/x-www-form-urlencoded" or (not media and b"=" in req.body[:256]):
        body_parts = parse_form(req.body)
    else:
        body_parts = []
    # Within the body the first occurrence wins; the body wins over the query string.
    seen: set[str] = set()
    for name, value in body_parts:
        if name not in seen:
            seen.add(name)
            fields.add(name, value, override=True)
    return fields


def _utf8(value: bytes | None) -> str:
    """A urlencoded or multipart text value: its bytes are UTF-8."""
    return "" if value is None else value.decode("utf-8", errors="replace")


def choose_image(fields: Fields) -> tuple[str, bytes] | None:
    """(field name, value) of the image field that wins, or None when none is given."""
    for name in IMAGE_FIELDS:
        value = fields.raw(name)
        if value:
            return name, value
    return None


# --- request ids and time_used ---------------------------------------------------------


class _StartTimes:
    """When each request id was issued, so errors carry a real `time_used` too.

    Bounded: an id whose response is never rendered is forgotten after `size` newer ones.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._times: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, request_id: str) -> None:
        with self._lock:
            self._times[request_id] = time.perf_counter()
            while len(self._times) > self.size:
                self._times.popitem(last=False)

    def elapsed_ms(self, request_id: str) -> int:
        with self._lock:
            started = self._times.pop(request_id, None)
        return 0 if started is None else int((time.perf_counter() - started) * 1000)


# --- responses ----------------------------------------------------------------------


def _json(payload: dict[str, Any], status: int) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def _point(point) -> dict[str, int]:
    x, y = point
    return {"x": int(round(x)), "y": int(round(y))}


def bank_card(reading: CardReading, version: str) -> dict[str, Any]:
    left_top, right_top, right_bottom, left_bottom = reading.card_quad
    card: dict[str, Any] = {
        "bound": {
            "left_top": _point(left_top),
            "right_top": _point(right_top),
            "right_bottom": _point(right_bottom),
            "left_bottom": _point(left_bottom),
        },
        "number": reading.number,  # digits only, no spaces
    }
    if version == "v1":
        bank = reading.bank
        card["bank"] = (bank.bank_name if bank else None) or "null"  # the string "null" when unknown
        network = ((bank.network if bank else None) or "").lower()
        card["organization"] = [_ORGANIZATIONS[network]] if network in _ORGANIZATIONS else []
    return card


# --- the dialect ---------------------------------------------------------------------


class Settings(DialectSettings):
    """[facepp]"""

    credentials: dict[str, Secret] = {}  # api_key -> api_secret
    # Keys the operator has switched off without deleting them: AUTHORIZATION_ERROR:Denied by Admin.
    disabled_keys: frozenset[str] = frozenset()

    def has_credentials(self) -> bool:
        return bool(self.credentials)


# python-facepp (or plain requests) pointed at the gateway (README.md); shown by the console.
SDK_SNIPPET = """\
from facepplib import FacePP
app = FacePP(api_key="API_KEY", api_secret="API_SECRET", url="{base_url}")
answer = app.engine.request("post", app.url + "/cardpp/v1/ocrbankcard", data={"image_file": "card.jpg"})
# or: requests.post("{base_url}/cardpp/v1/ocrbankcard",
#                   data={"api_key": ..., "api_secret": ...}, files={"image_file": open("card.jpg", "rb")})
"""


class FaceppDialect:
    name = NAME
    limits = LIMITS

    def __init__(self, settings: Settings, allow_unsigned: bool):
        self.credentials: dict[str, str] = dict(settings.credentials)
        self.disabled_keys = settings.disabled_keys
        self.open = allow_unsigned and not self.credentials
        self._starts = _StartTimes()

    def routes(self) -> list[tuple[str, list[str]]]:
        paths = [f"/cardpp/{version}/ocrbankcard" for version in VERSIONS]
        return [(path, ["POST"]) for path in paths] + [(PREFIX + path, ["POST"]) for path in paths]

    def owns_path(self, path: str) -> bool:
        return any(path == root or path.startswith(root + "/") for root in (PREFIX, "/cardpp"))

    def new_request_id(self) -> str:
        request_id = f"{int(time.time())},{uuid.uuid4()}"  # "1473759244,40dfde25-6d1a-..."
        self._starts.start(request_id)
        return request_id

    def authenticate(self, req: IncomingRequest, now: float) -> str | None:
        if self.open:
            return None
        fields = request_fields(req)
        api_key, api_secret = fields.raw("api_key"), fields.raw("api_secret")
        if not api_key:
            raise FaceppError("MISSING_ARGUMENTS", "api_key")
        if not api_secret:
            raise FaceppError("MISSING_ARGUMENTS", "api_secret")
        key = _utf8(api_key)
        secret = self.credentials.get(key)
        # Compare even for an unknown key, so timing does not tell which keys exist.
        matches = hmac.compare_digest(api_secret, (secret if secret is not None else "\x00unknown").encode())
        if secret is None or not matches:
            raise FaceppError("AUTHENTICATION_ERROR", "api_key/api_secret mismatch")
        if key in self.disabled_keys:
            raise FaceppError("AUTHORIZATION_ERROR", DENIED_BY_ADMIN)
        return key

    def parse(self, req: IncomingRequest) -> EngineCall:
        version = "v1" if "/v1/" in req.path else "beta"
        fields = request_fields(req)
        chosen = choose_image(fields)
        if chosen is None:
            raise FaceppError("MISSING_ARGUMENTS", MISSING_IMAGE)
        param, value = chosen
        if param == "image_file":
            source = ImageSource(data=value)
        elif param == "image_base64":
            try:
                source = ImageSource(data=decode_base64_strict(_utf8(value)))
            except gw.BadBase64Error:
                raise FaceppError("BAD_ARGUMENTS", "image_base64") from None
        else:
            source = ImageSource(url=_utf8(value).strip())
        options = ReadOptions(max_pixels=LIMITS.max_pixels, min_side=LIMITS.min_side)
        return EngineCall(image=source, options=options, context={"version": version, "param": param})

    def render(self, call: EngineCall, reading: CardReading, request_id: str, elapsed_ms: float) -> Response:
        self._starts.elapsed_ms(request_id)  # forget the start time
        payload = {
            "bank_cards": [bank_card(reading, call.context.get("version", "beta"))],
            "image_id": _image_id(),
            "time_used": int(elapsed_ms),
            "request_id": request_id,
        }
        return _json(payload, 200)

    def render_error(self, exc: Exception, request_id: str, req: IncomingRequest | None = None) -> Response:
        time_used = self._starts.elapsed_ms(request_id)
        try:
            entry = ERRORS.for_exception(exc)
            argument = self._argument(exc, entry.key, req)
        except Exception:  # never let an error page fail
            log.exception("facepp: rendering %r failed", exc)
            entry, argument = ERRORS.fallback, None
        if entry.key == NOTHING_READ:  # nothing readable in the image: Face++ answers an empty list
            return _json({"bank_cards": [], "image_id": _image_id(), "time_used": time_used, "request_id": request_id}, 200)
        if entry.key == PLAIN_TEXT:
            return Response(entry.message, status_code=entry.status, media_type="text/plain")
        code = entry.code
        if code == "MISSING_ARGUMENTS":
            message = f"{code}: {argument}"
        elif argument is not None and (code in _PARAM_ERRORS or code == "AUTHORIZATION_ERROR"):
            message = f"{code}:{argument}"
        else:
            message = entry.message
        return _json({"time_used": time_used, "error_message": message, "request_id": request_id}, entry.status)

    def _argument(self, exc: Exception, code: str, req: IncomingRequest | None) -> str | None:
        """What the doc's message names after the code: the parameter, or the refusal's reason."""
        if isinstance(exc, VendorError):
            if code == "AUTHORIZATION_ERROR":
                return DENIED_BY_ADMIN
            return exc.detail if code in ("MISSING_ARGUMENTS", "BAD_ARGUMENTS") else None
        if code in _PARAM_ERRORS:
            return _image_param(exc, req)
        return None

    def error_code(self, exc: Exception) -> str:
        return error_code_for(exc)

    # --- console (gateway/console) ---

    def auth_mode(self) -> str:
        return auth_mode_of(self.open, signed=False, token=True)  # api_key + api_secret in the body

    def console_request(self, image: bytes, asks: ReadOptions) -> IncomingRequest:
        """A v1 form POST with image_base64 (as requests.post(data=...) sends); no option flags here."""
        body = urlencode({"image_base64": base64.b64encode(image).decode("ascii")})
        return console_request("POST", "/cardpp/v1/ocrbankcard", {"Content-Type": "application/x-www-form-urlencoded"},
                               body.encode("ascii"))

    def sdk_snippet(self, base_url: str) -> str:
        return SDK_SNIPPET.replace("{base_url}", base_url)


def _image_param(exc: Exception, req: IncomingRequest | None) -> str:
    """Which request field held the failing image (the <param> of the doc's messages)."""
    if isinstance(exc, gw.FetchError):
        return "image_url"
    if req is not None:
        try:
            chosen = choose_image(request_fields(req))
        except VendorError:
            chosen = None
        if chosen is not None:
            return chosen[0]
    return "image_file"


def _image_id() -> str:
    """`image_id` names the image "in the system"; we keep no images, so it is a fresh random id."""
    return base64.b64encode(os.urandom(16)).decode()


def create(settings: Settings | dict, allow_unsigned: bool) -> FaceppDialect:
    return FaceppDialect(settings_from(settings, Settings, NAME), allow_unsigned)
