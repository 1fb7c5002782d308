"""Tencent Cloud API 3.0 signatures: TC3-HMAC-SHA256, and the legacy HmacSHA1 / HmacSHA256.

One canonicalisation serves both sides: `verify_tc3` / `verify_legacy` check a
request as received (adapters/tencent.py), `sign_tc3` and `TC3Auth` sign one as
the SDK does (the migration client, the benchmark, any httpx caller):

    CanonicalRequest = METHOD \\n "/" \\n query \\n name:value\\n... \\n signed;names \\n hex(SHA256(payload))
    StringToSign     = "TC3-HMAC-SHA256" \\n timestamp \\n date/service/tc3_request \\n hex(SHA256(CanonicalRequest))
    signature        = hex(HMAC-SHA256(HMAC chain "TC3"+key -> date -> service -> "tc3_request", StringToSign))

Both are recomputed over the bytes as received and compared in constant time;
the client's timestamp must be within SIGNATURE_WINDOW_S of our clock.

tencentcloud-sdk-nodejs signs TC3 differently from the Python SDK (clients/README.md
§11.1): `host` without the port, and the scope's service taken from its endpoint text
up to the first dot ("127" for 127.0.0.1:8080). The verifier accepts both.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import datetime, timezone
from typing import Callable

import httpx

from adapters.base import is_ascii_number
from adapters.tencent_errors import TencentError
from core.request import IncomingRequest

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "ocr"
SIGNATURE_WINDOW_S = 300  # "Timestamp and server time cannot differ by more than five minutes"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SDK_SIGNED_HEADERS = ("content-type", "host")

_PORT_RE = re.compile(r":[0-9]+$")
_TC3_RE = re.compile(
    r"^TC3-HMAC-SHA256\s+Credential=(?P<secret_id>[^/\s,]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/\s,]+)/tc3_request"
    r"\s*,\s*SignedHeaders=(?P<signed>[A-Za-z0-9\-;]+)\s*,\s*Signature=(?P<signature>[0-9a-fA-F]{64})\s*$"
)


def _secret_key(credentials: dict[str, str], secret_id: str, timestamp: int, token: bool, now: float) -> str:
    """The SecretKey to check a signature with, once its timestamp is in the window (both styles)."""
    if abs(now - timestamp) > SIGNATURE_WINDOW_S:
        raise TencentError("AuthFailure.SignatureExpire", f"timestamp {timestamp} vs now {int(now)}")
    secret_key = credentials.get(secret_id)
    if secret_key is None:
        raise TencentError("AuthFailure.SecretIdNotFound", secret_id)
    if token:
        raise TencentError("AuthFailure.TokenFailure", "temporary credentials are not issued here")
    return secret_key


# --- TC3-HMAC-SHA256 -----------------------------------------------------------


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_date(timestamp: int) -> str:
    """The credential scope's date: the UTC date of the timestamp."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    k_date = _hmac256(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac256(k_date, service)
    k_signing = _hmac256(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_canonical_request(method: str, query: str, headers: list[tuple[str, str]], payload_hash: str) -> str:
    """`headers`: the signed (lower-case name, value) pairs, in SignedHeaders order."""
    lines = "".join(f"{name}:{value}\n" for name, value in headers)
    signed = ";".join(name for name, _ in headers)
    return "\n".join([method, "/", query, lines, signed, payload_hash])


def tc3_string_to_sign(timestamp: str, date: str, canonical: str, service: str = SERVICE) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, timestamp, f"{date}/{service}/tc3_request", digest])


def _payload_hash(payload: bytes, unsigned_payload: bool) -> str:
    # X-TC-Content-SHA256: UNSIGNED-PAYLOAD: the SDK hashes the literal, it does not send it in place of the hash
    return hashlib.sha256(UNSIGNED_PAYLOAD.encode() if unsigned_payload else payload).hexdigest()


def sign_tc3(
    secret_id: str,
    secret_key: str,
    method: str,
    headers: list[tuple[str, str]],
    payload: bytes,
    timestamp: int,
    query: str = "",
    unsigned_payload: bool = False,
) -> str:
    """The Authorization header for a request; `headers` are the (name, value) pairs to sign."""
    signed = [(name.lower(), value.strip()) for name, value in headers]
    date = tc3_date(timestamp)
    canonical = tc3_canonical_request(method, query, signed, _payload_hash(payload, unsigned_payload))
    signature = tc3_signature(secret_key, date, SERVICE, tc3_string_to_sign(str(timestamp), date, canonical))
    names = ";".join(name for name, _ in signed)
    return f"{ALGORITHM} Credential={secret_id}/{date}/{SERVICE}/tc3_request, SignedHeaders={names}, Signature={signature}"


def tc3_canonical_requests(req: IncomingRequest, signed_headers: list[str]) -> list[str]:
    """The canonical request(s) the client may have signed.

    The SDK signs header values as sent; Tencent's doc says values are
    lower-cased; the Node SDK signs Host without its port. All are keyed by
    the secret, so accepting any is safe.
    """
    if req.method in ("GET", "HEAD"):
        query, payload = req.query_string.decode("latin-1"), b""
    else:
        query, payload = "", req.body
    unsigned = (req.header("x-tc-content-sha256") or "").strip() == UNSIGNED_PAYLOAD
    payload_hash = _payload_hash(payload, unsigned)
    values = [(req.header(name) or "").strip() for name in signed_headers]
    portless = [_PORT_RE.sub("", v) if name == "host" else v for name, v in zip(signed_headers, values)]
    requests = []
    for variant in (values, [v.lower() for v in values], portless, [v.lower() for v in portless]):
        canonical = tc3_canonical_request(req.method, query, list(zip(signed_headers, variant)), payload_hash)
        if canonical not in requests:
            requests.append(canonical)
    return requests


def verify_tc3(req: IncomingRequest, credentials: dict[str, str], now: float) -> str:
    """Check a TC3-HMAC-SHA256 request; return its SecretId or raise TencentError(AuthFailure.*)."""
    match = _TC3_RE.match((req.header("authorization") or "").strip())
    if not match:
        raise TencentError("AuthFailure.InvalidAuthorization", "malformed TC3 Authorization header")
    signed_headers = match["signed"].lower().split(";")
    service = match["service"]
    # The Node SDK's service is its endpoint text up to the first dot, so the Host it sends
    # up to the first dot ("127" for 127.0.0.1:8080; case aside, as URLs lower-case hosts).
    # The service is in the signing key and the string to sign, so the signature still
    # proves the secret. All it lets in besides: a request signed with the same key for
    # another service and replayed here with its own Host, inside the window, its body
    # unchanged: nothing an attacker can choose.
    host_label = (req.header("host") or "").strip().split(".")[0]
    service_ok = service == SERVICE or service.lower() == host_label.lower()
    if not service_ok or "content-type" not in signed_headers or "host" not in signed_headers:
        raise TencentError("AuthFailure.InvalidAuthorization", "scope or SignedHeaders not acceptable")
    timestamp_text = (req.header("x-tc-timestamp") or "").strip()
    if not is_ascii_number(timestamp_text):
        raise TencentError("AuthFailure.InvalidAuthorization", "X-TC-Timestamp missing or not a number")
    timestamp = int(timestamp_text)
    secret_id = match["secret_id"]
    secret_key = _secret_key(credentials, secret_id, timestamp, bool(req.header("x-tc-token")), now)
    date = match["date"]
    if date != tc3_date(timestamp):
        raise TencentError("AuthFailure.SignatureFailure", "credential date is not the UTC date of X-TC-Timestamp")
    given = match["signature"].lower()
    ok = False
    for canonical in tc3_canonical_requests(req, signed_headers):
        string_to_sign = tc3_string_to_sign(timestamp_text, date, canonical, service)
        # every variant is compared, so timing does not tell which one matched
        ok |= hmac.compare_digest(tc3_signature(secret_key, date, service, string_to_sign), given)
    if not ok:
        raise TencentError("AuthFailure.SignatureFailure", "TC3 signature mismatch")
    return secret_id


class TC3Auth(httpx.Auth):
    """Signs an httpx request as tencentcloud-sdk-python does: X-TC-Timestamp, then TC3 over content-type;host."""

    requires_request_body = True

    def __init__(self, secret_id: str, secret_key: str, clock: Callable[[], float] = time.time):
        self.secret_id, self.secret_key, self.clock = secret_id, secret_key, clock

    def auth_flow(self, request: httpx.Request):
        timestamp = int(self.clock())
        request.headers["X-TC-Timestamp"] = str(timestamp)
        body_less = request.method in ("GET", "HEAD")
        request.headers["Authorization"] = sign_tc3(
            self.secret_id,
            self.secret_key,
            request.method,
            [(name, request.headers.get(name, "")) for name in SDK_SIGNED_HEADERS],
            b"" if body_less else request.content,
            timestamp,
            query=request.url.query.decode("latin-1") if body_less else "",
        )
        yield request


# --- legacy HmacSHA1 / HmacSHA256 ----------------------------------------------

_LEGACY_DIGESTS = {"HmacSHA1": hashlib.sha1, "HmacSHA256": hashlib.sha256}


def legacy_string_to_sign(method: str, host: str, path: str, params: dict[str, str]) -> str:
    """METHOD + Host + path + "?" + sorted k=v with the raw (decoded) values, `_` in keys read as `.`."""
    fixed = {key.replace("_", "."): value for key, value in params.items() if key != "Signature"}
    return f"{method}{host}{path}?" + "&".join(f"{key}={fixed[key]}" for key in sorted(fixed))


def legacy_signature(secret_key: str, string_to_sign: str, method: str) -> str:
    digest = hmac.new(secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), _LEGACY_DIGESTS[method]).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_legacy(req: IncomingRequest, params: dict[str, str], credentials: dict[str, str], now: float) -> str:
    """Check a legacy form/query signature; return its SecretId or raise TencentError."""
    for name in ("SecretId", "Signature", "Timestamp", "Nonce"):
        if not params.get(name):
            raise TencentError("MissingParameter", name)
    timestamp_text = params["Timestamp"].strip()
    if not is_ascii_number(timestamp_text):
        raise TencentError("InvalidParameter", "Timestamp is not a number")
    secret_id = params["SecretId"]
    secret_key = _secret_key(credentials, secret_id, int(timestamp_text), bool(params.get("Token")), now)
    method = params.get("SignatureMethod") or "HmacSHA1"
    if method not in _LEGACY_DIGESTS:
        raise TencentError("AuthFailure.SignatureFailure", "unknown SignatureMethod")
    host = req.header("host") or ""
    # The SDK signs its own request path, "/". Under the /tencent/ prefix the
    # client may have signed either the path it called or "/".
    paths = [req.path] if req.path == "/" else [req.path, "/"]
    given = params["Signature"]
    ok = False
    for path in paths:
        expected = legacy_signature(secret_key, legacy_string_to_sign(req.method, host, path, params), method)
        ok |= hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))
    if not ok:
        raise TencentError("AuthFailure.SignatureFailure", "legacy signature mismatch")
    return secret_id
