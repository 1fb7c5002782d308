"""The one narrow interface every vendor dialect implements.

The shared machinery in `gateway/` (routing, body reading, image fetching, the
engine queue, request ids, logging, metrics) drives a `Dialect` and never names
a vendor. A dialect module knows its vendor's wire format, signature scheme,
limits and error table, and nothing about the other vendors.

Request flow, for every dialect:

    req = IncomingRequest(...)                    # raw bytes as received
    dialect.authenticate(req, now)                # raises VendorError
    call = dialect.parse(req)                     # raises VendorError
    image = bytes, or fetched from call.image.url under dialect.limits
    reading = engine.read(image, call.options)    # off the event loop
    return dialect.render(call, reading, request_id, elapsed_ms)

and any exception on the way is turned into the vendor's own error by
`dialect.render_error(exc, request_id)`.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

import msgspec
from starlette.responses import Response

from core.limits import ImageLimits
from core.request import EngineCall, IncomingRequest
from core.validation import convert
from engine.types import CardReading, ReadOptions

Secret = Annotated[str, msgspec.Meta(min_length=1)]  # a key, secret or token: never ""


class DialectSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The keys every vendor table has. Each adapter declares `Settings`, a subclass with its own keys."""

    enabled: bool = True  # false: the dialect is not served

    def has_credentials(self) -> bool:
        """True when the table configures a way to authenticate callers."""
        return False


S = TypeVar("S", bound=DialectSettings)


def settings_from(settings: Any, kind: type[S], table: str) -> S:
    """An adapter's settings: its Struct as given, or a dict (Python callers, tests) checked through it."""
    if isinstance(settings, kind):
        return settings
    return convert({} if settings is None else settings, kind, (table,))


class UnknownVendorCode(ValueError):
    """A dialect raised a code its error table does not have: a bug in that dialect."""


class VendorError(Exception):
    """An error the dialect has already decided, named by a key of its error table.

    Each dialect raises its own subclass, whose `table` is its ErrorTable
    (adapters/error_table.py): a key not in it is refused here, where it is raised, rather
    than answered later as the internal error. `detail` is for logs only. A VendorError of
    no dialect (table None) is the gateway's and tests' generic one; each table answers a
    code it does not know with its fallback.
    """

    table: ClassVar[Mapping[str, Any] | None] = None

    def __init__(self, code: str, detail: str = ""):
        if self.table is not None and code not in self.table:
            raise UnknownVendorCode(f"{type(self).__name__}: {code!r} is not in its dialect's error table")
        super().__init__(code if not detail else f"{code}: {detail}")
        self.code = code
        self.detail = detail


def is_ascii_number(text: str) -> bool:
    """0-9 only, as every vendor means by a number on the wire: str.isdigit() and int() also
    take other scripts' digits and superscripts ("²"), which int() then may refuse."""
    return text.isascii() and text.isdigit()


def luhn_valid(digits: str) -> bool:
    """True when the ASCII digit string passes the Luhn check, as a card number must."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        total += (d * 2 - 9 if d > 4 else d * 2) if i % 2 else d
    return total % 10 == 0


def numeric_request_id(low: int, high: int) -> str:
    """A random integer in [low, high) as decimal digits that fail Luhn, for the vendors whose
    request ids are numbers (myqcloud's session_id, Baidu's log_id). An id of 13-19 digits that
    passed Luhn (one in ten would) looks like a card number to log scanners and DLP filters,
    which then flag or redact every access log holding one. Redrawn until it fails: 1.1 draws
    on average, and the range and uniformity over the failing ids are kept."""
    while True:
        digits = str(low + secrets.randbelow(high - low))
        if not luhn_valid(digits):
            return digits


# What Dialect.auth_mode() answers: signed requests (HMAC of the request), a key or token sent
# as is, either of the two, or nothing checked (loopback or --insecure without credentials).
AUTH_MODES = ("signed", "token", "signed+token", "open")


def auth_mode_of(open_: bool, signed: bool, token: bool) -> str:
    """The AUTH_MODES value for a dialect that is open, or checks signatures and/or tokens."""
    if open_:
        return "open"
    return "signed+token" if signed and token else "token" if token and not signed else "signed"


class Dialect(Protocol):
    name: str  # "tencent", "myqcloud", "huawei", "facepp", "hex", "baidu", "alibaba": labels in logs and metrics
    limits: ImageLimits

    def routes(self) -> list[tuple[str, list[str]]]:
        """(Starlette path pattern, methods) pairs this dialect serves, native and prefixed."""

    def owns_path(self, path: str) -> bool:
        """True when an unknown path should still be answered in this dialect (e.g. /facepp/...)."""

    def new_request_id(self) -> str: ...

    def authenticate(self, req: IncomingRequest, now: float) -> str | None:
        """Verify the signature or key; return the credential id (None when open). Raise VendorError."""

    def parse(self, req: IncomingRequest) -> EngineCall:
        """Read the image source and options. Raise VendorError for missing/bad fields."""

    def render(self, call: EngineCall, reading: CardReading, request_id: str, elapsed_ms: float) -> Response: ...

    def render_error(self, exc: Exception, request_id: str, req: IncomingRequest | None = None) -> Response:
        """Any exception -> the vendor's own error response. Never raises, never a 500 with a trace."""

    def error_code(self, exc: Exception) -> int | str:
        """The vendor code render_error(exc) answers with, for metrics and access logs: read from
        the dialect's error table (adapters/<vendor>_errors.py)."""

    # For the console and /_cardgate/health (gateway/console/): what a caller of this dialect
    # sees, told by the dialect itself so that the console has no second copy of any vendor.

    def auth_mode(self) -> str:
        """How callers are checked now: one of AUTH_MODES ("open" when nothing is checked)."""

    def console_request(self, image: bytes, asks: ReadOptions) -> IncomingRequest:
        """The request this vendor's SDK would send for `image`, asking what `asks` asks for
        (the flags this API has; others are left out), unsigned. The console runs it through
        this dialect's own parse() and render(), so no response is made twice."""

    def sdk_snippet(self, base_url: str) -> str:
        """A short snippet of this vendor's Python SDK (or plain HTTP) pointed at `base_url`."""


# Optional methods a dialect may add (the gateway looks them up with getattr):
#
#   claims(method: str, headers: Mapping[str, str], query: str) -> bool
#       On a path another dialect serves too (`POST /`): True when this request is in this
#       dialect's protocol. Only headers and query are seen: the body is not read yet.
#   answer_without_image(req, credential, request_id, now) -> Response | None
#       Called after authenticate(): an answer that needs no image (a token endpoint), or
#       None to go on to parse(). Counted and logged like any other answer.
#   use_replay_store(store: core.replay.ReplayStore) -> None
#       Called once by the gateway: the store every worker shares, for keys that may be used
#       only once (single-use signatures, nonces). Until then the dialect keeps its own.
