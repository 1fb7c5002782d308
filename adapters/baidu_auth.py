"""Baidu AI Cloud authentication: `bce-auth-v1` signatures and the gateway's own access tokens.

One canonicalisation serves `sign()` and `verify()`, so tests and clients can sign
exactly what the gateway checks (vendor-specs/baidu-bankcard.md §2.2):

    authStringPrefix = "bce-auth-v1/{ak}/{timestamp}/{expiration}"
    signingKey       = hex(HMAC-SHA256(sk, authStringPrefix))          # the hex text is the key
    CanonicalRequest = METHOD \\n UriEncodeExceptSlash(path) \\n CanonicalQuery \\n CanonicalHeaders
    signature        = hex(HMAC-SHA256(signingKey, CanonicalRequest))

Access tokens are self-verifying (an HMAC under the app's secret key), so any worker
or replica accepts a token another one issued, and rotating the secret key revokes
every token of that app. They look like Baidu's: `24.<32 hex>.<expires_in>.<issued>.<n>-<app id>`.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote

AUTH_VERSION = "bce-auth-v1"
SDK_EXPIRATION_S = 1800  # what both SDKs sign with
MAX_EXPIRATION_S = 1800  # a longer expirationPeriodInSeconds is honoured only up to this
FUTURE_SKEW_S = 300  # a timestamp this far ahead of our clock is still taken (client clocks drift)
TOKEN_LIFETIME_S = 2592000  # 30 days: Node refreshes a day early, so it must be well above 86400
TOKEN_PREFIX = "24"


class AuthFailure(Exception):
    """`reason` names what failed: "malformed", "expired", "unknown_key", "mismatch"."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- bce-auth-v1 ----------------------------------------------------------------------


def uri_encode(text: str, keep_slash: bool = False) -> str:
    """RFC 3986: unreserved characters kept, everything else %XX (upper case)."""
    return quote(text, safe="/-_.~" if keep_slash else "-_.~")


def canonical_query(query_string: bytes | str) -> str:
    """Each key=value decoded then URI-encoded, `authorization` left out, sorted, joined by &."""
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    pairs = parse_qsl(text, keep_blank_values=True)
    items = [f"{uri_encode(k)}={uri_encode(v)}" for k, v in pairs if k.lower() != "authorization"]
    return "&".join(sorted(items))


def canonical_request(method: str, path: str, query_string: bytes | str, headers: dict[str, str],
                      signed_headers: list[str]) -> str:
    """`headers` maps lower-case names to values; only `signed_headers` enter."""
    lines = sorted(f"{uri_encode(name)}:{uri_encode(headers.get(name, '').strip())}" for name in signed_headers)
    return "\n".join([method.upper(), uri_encode(path, keep_slash=True), canonical_query(query_string), "\n".join(lines)])


def _signature(secret_key: str, prefix: str, canonical: str) -> str:
    signing_key = hmac.new(secret_key.encode("utf-8"), prefix.encode("utf-8"), hashlib.sha256).hexdigest()
    return hmac.new(signing_key.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def bce_timestamp(now: float) -> str:
    return datetime.fromtimestamp(int(now), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(access_key: str, secret_key: str, method: str, path: str, query_string: bytes | str,
         headers: dict[str, str], signed_headers: list[str], now: float,
         expiration: int = SDK_EXPIRATION_S) -> str:
    """The `authorization` header value for this request (headers: lower-case names)."""
    names = [h.lower() for h in signed_headers]
    prefix = f"{AUTH_VERSION}/{access_key}/{bce_timestamp(now)}/{expiration}"
    signature = _signature(secret_key, prefix, canonical_request(method, path, query_string, headers, names))
    return f"{prefix}/{';'.join(names)}/{signature}"


@dataclass(frozen=True)
class AuthString:
    access_key: str
    timestamp: str
    signed_at: float
    expiration: int
    signed_headers: list[str]
    signature: str

    @property
    def prefix(self) -> str:
        return f"{AUTH_VERSION}/{self.access_key}/{self.timestamp}/{self.expiration}"


def parse_authorization(value: str) -> AuthString:
    parts = value.strip().split("/")
    if len(parts) != 6 or parts[0] != AUTH_VERSION:
        raise AuthFailure("malformed", "not bce-auth-v1/ak/timestamp/expiration/headers/signature")
    _, access_key, timestamp, expiration, signed, signature = parts
    try:
        signed_at = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise AuthFailure("malformed", "timestamp is not YYYY-MM-DDThh:mm:ssZ") from None
    if not (expiration.isascii() and expiration.isdigit()) or not access_key or not signed:
        raise AuthFailure("malformed", "expiration, access key or signed headers")
    names = [h.strip().lower() for h in signed.split(";") if h.strip()]
    if "host" not in names:
        raise AuthFailure("malformed", "host is not signed")
    return AuthString(access_key, timestamp, signed_at, int(expiration), names, signature.lower())


def verify(authorization: str, secret_for, method: str, paths: list[str], query_string: bytes | str,
           headers: dict[str, str], now: float) -> str:
    """Check a bce-auth-v1 request; return its access key, or raise AuthFailure.

    `secret_for(ak)` gives the secret key or None; `paths` are the paths the client may
    have signed (the one it called and, under a prefix, the native one).
    """
    auth = parse_authorization(authorization)
    window = min(auth.expiration, MAX_EXPIRATION_S)
    if now > auth.signed_at + window or auth.signed_at > now + FUTURE_SKEW_S:
        raise AuthFailure("expired", f"signed {auth.timestamp}, {auth.expiration} s")
    secret_key = secret_for(auth.access_key)
    if secret_key is None:
        raise AuthFailure("unknown_key", auth.access_key)
    ok = False
    for path in paths:  # every candidate compared: timing does not tell which matched
        canonical = canonical_request(method, path, query_string, headers, auth.signed_headers)
        ok |= hmac.compare_digest(_signature(secret_key, auth.prefix, canonical), auth.signature)
    if not ok:
        raise AuthFailure("mismatch", "bce-auth-v1 signature")
    return auth.access_key


# --- access tokens ------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    app_id: str
    mac: str
    expires_in: int
    issued_at: int
    serial: str


def _token_mac(secret_key: str, api_key: str, app_id: str, expires_in: int, issued_at: int, serial: str) -> str:
    message = f"cardgate-baidu-token\n{api_key}\n{app_id}\n{expires_in}\n{issued_at}\n{serial}"
    return hmac.new(secret_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def mint_token(app_id: str, api_key: str, secret_key: str, now: float, lifetime: int = TOKEN_LIFETIME_S) -> str:
    issued, serial = int(now), str(secrets.randbelow(900000) + 100000)
    mac = _token_mac(secret_key, api_key, app_id, lifetime, issued, serial)
    return f"{TOKEN_PREFIX}.{mac}.{lifetime}.{issued}.{serial}-{app_id}"


def read_token(token: str) -> Token:
    """The parts of a token of ours; AuthFailure("malformed") for anything else."""
    parts = token.split(".", 4)
    if len(parts) != 5 or parts[0] != TOKEN_PREFIX:
        raise AuthFailure("malformed", "not a token of this gateway")
    _, mac, expires_in, issued_at, rest = parts
    serial, sep, app_id = rest.partition("-")
    numbers = (expires_in, issued_at, serial)
    if not sep or not app_id or len(mac) != 32 or not all(n.isascii() and n.isdigit() for n in numbers):
        raise AuthFailure("malformed", "token fields")
    return Token(app_id, mac.lower(), int(expires_in), int(issued_at), serial)


def verify_token(token: Token, api_key: str, secret_key: str, now: float) -> None:
    """AuthFailure("mismatch") for a token not issued under this secret, ("expired") past its lifetime."""
    expected = _token_mac(secret_key, api_key, token.app_id, token.expires_in, token.issued_at, token.serial)
    if not hmac.compare_digest(expected, token.mac):
        raise AuthFailure("mismatch", "token")
    if now > token.issued_at + token.expires_in:
        raise AuthFailure("expired", "token")
