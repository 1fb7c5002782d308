"""Huawei Cloud APIG `SDK-HMAC-SHA256` (AK/SK) signatures.

One canonicalisation serves both sides: `verify_aksk` checks a request as received
(adapters/huawei.py), `sign_aksk` and `HuaweiAuth` sign one as huaweicloudsdkcore's
Signer does (the migration client, the benchmark, any httpx caller):

    CanonicalRequest = METHOD \\n URI/ \\n sorted query \\n name:value\\n... \\n signed;names \\n hex(SHA256(body))
    StringToSign     = "SDK-HMAC-SHA256" \\n X-Sdk-Date \\n hex(SHA256(CanonicalRequest))
    signature        = hex(HMAC-SHA256(SK, StringToSign))

The URI is url-decoded and each segment re-encoded with quote(safe='~'), always
ending in '/'; query pairs likewise, sorted. X-Sdk-Date must be within
SIGNATURE_WINDOW_S of our clock.
"""
from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from typing import Callable
from urllib.parse import quote, unquote

import httpx

from adapters.huawei_errors import HuaweiError
from core.request import IncomingRequest

ALGORITHM = "SDK-HMAC-SHA256"
SIGNATURE_WINDOW_S = 15 * 60  # APIG: X-Sdk-Date within 15 minutes of the server clock
SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SDK_DATE_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")  # not \d, which takes any script's digits
_AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]+)\s*$"
)
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def header_bytes(value: str) -> bytes:
    """A header value back to the bytes on the wire (servers decode them as latin-1)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def canonical_uri(path: str) -> str:
    """The path url-decoded, then each segment re-encoded with quote(safe='~'), always ending in '/'
    (the SDK decodes the whole path before it splits it, so an encoded '/' separates segments too)."""
    uri = "/".join(quote(segment, safe="~") for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(query: str) -> str:
    """(key, value) pairs decoded, sorted, each re-encoded with quote(safe='~')."""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    pairs.sort()
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)


def canonical_text(method: str, raw_path: str, query: str, headers: list[tuple[str, bytes]], body_hash: str) -> bytes:
    """`headers`: the signed (lower-case name, value bytes) pairs, in SignedHeaders order."""
    lines = [method.upper().encode(), canonical_uri(raw_path).encode(), canonical_query(query).encode()]
    lines += [name.encode() + b":" + value.strip() for name, value in headers]
    signed = ";".join(name for name, _ in headers).encode()
    return b"\n".join(lines) + b"\n\n" + signed + b"\n" + body_hash.encode()


def string_to_sign(sdk_date: str, canonical: bytes) -> bytes:
    return f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical).hexdigest()}".encode()


def _signature(secret_key: str, sdk_date: str, canonical: bytes) -> str:
    return hmac.new(secret_key.encode(), string_to_sign(sdk_date, canonical), hashlib.sha256).hexdigest()


def sdk_date(now: float) -> str:
    return time.strftime(SDK_DATE_FORMAT, time.gmtime(now))


def parse_sdk_date(value: str) -> float:
    """'20261121T192231Z' -> unix seconds (UTC)."""
    if not _SDK_DATE_RE.match(value):
        raise ValueError(value)
    return float(calendar.timegm(time.strptime(value, SDK_DATE_FORMAT)))


def sign_aksk(access_key: str, secret_key: str, method: str, path: str, query: str,
              headers: list[tuple[str, str]], body: bytes) -> str:
    """The Authorization header over every header given (names lower-cased, sorted); X-Sdk-Date among them."""
    signed = sorted((name.lower(), header_bytes(value)) for name, value in headers)
    date = dict(signed)["x-sdk-date"].decode("latin-1").strip()
    canonical = canonical_text(method, path, query, signed, hashlib.sha256(body).hexdigest())
    names = ";".join(name for name, _ in signed)
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={names}, Signature={_signature(secret_key, date, canonical)}"


def canonical_request(req: IncomingRequest, signed_headers: list[str]) -> bytes:
    """The SDK's CanonicalRequest, over the request exactly as received.

    Raises HuaweiError when a signed header is missing or the body does not
    match a declared X-Sdk-Content-Sha256.
    """
    headers = []
    for name in signed_headers:
        value = req.header(name)
        if value is None:
            raise HuaweiError("APIG.0301", "verify aksk signature fail")
        headers.append((name, header_bytes(value)))
    body_hash = hashlib.sha256(req.body).hexdigest() if req.body else _EMPTY_SHA256
    declared = req.header("x-sdk-content-sha256")
    # The SDK would put a declared hash (e.g. UNSIGNED-PAYLOAD) in place of the body
    # hash. This API is JSON only, so the body must always be covered: a declared
    # value is accepted only when it is the body's real hash.
    if declared is not None and declared.strip().lower() != body_hash:
        raise HuaweiError("APIG.0301", "verify aksk signature fail")
    return canonical_text(req.method, req.raw_path.decode("latin-1"), req.query_string.decode("latin-1"), headers, body_hash)


def verify_aksk(req: IncomingRequest, credentials: dict[str, str], now: float) -> str:
    """Check an SDK-HMAC-SHA256 request; return its AK. Raises HuaweiError APIG.0301."""
    authorization = (req.header("authorization") or "").strip()
    match = _AUTH_RE.match(authorization)
    if not match:
        raise HuaweiError("APIG.0301", "unsupported signature algorithm")
    access_key, signed_list, signature = match.groups()
    signed_headers = signed_list.split(";")
    if "x-sdk-date" not in signed_headers or "host" not in signed_headers:
        raise HuaweiError("APIG.0301", "verify aksk signature fail")
    date = (req.header("x-sdk-date") or "").strip()
    try:
        signed_at = parse_sdk_date(date)
    except ValueError:
        raise HuaweiError("APIG.0301", "invalid x-sdk-date") from None
    if abs(now - signed_at) > SIGNATURE_WINDOW_S:
        raise HuaweiError("APIG.0301", "request expired")
    secret = credentials.get(access_key)
    # Compute a signature even for an unknown AK, so timing does not tell which AKs exist.
    expected = _signature(secret if secret is not None else "\x00unknown-ak", date, canonical_request(req, signed_headers))
    matches = hmac.compare_digest(expected.encode(), signature.lower().encode())
    if secret is None or not matches:
        raise HuaweiError("APIG.0301", "verify aksk signature fail")
    return access_key


class HuaweiAuth(httpx.Auth):
    """Signs an httpx request as the SDK's Signer does: X-Sdk-Date, then every header in `signed`."""

    requires_request_body = True

    def __init__(self, access_key: str, secret_key: str, clock: Callable[[], float] = time.time,
                 signed: tuple[str, ...] = ("content-type", "host", "x-project-id", "x-sdk-date")):
        self.access_key, self.secret_key, self.clock, self.signed = access_key, secret_key, clock, signed

    def auth_flow(self, request: httpx.Request):
        request.headers["X-Sdk-Date"] = sdk_date(self.clock())
        headers = [(name, request.headers[name]) for name in self.signed if name in request.headers]
        request.headers["Authorization"] = sign_aksk(
            self.access_key, self.secret_key, request.method, request.url.raw_path.split(b"?")[0].decode("ascii"),
            request.url.query.decode("ascii"), headers, request.content,
        )
        yield request
