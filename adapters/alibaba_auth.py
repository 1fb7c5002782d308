"""Alibaba Cloud ACS3-HMAC-SHA256 (the V3 signature).

One canonicalisation serves `sign()` and `verify()` (vendor-specs/alibaba-recognizebankcard.md §2):

    CanonicalRequest = METHOD \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n HashedPayload
    StringToSign     = "ACS3-HMAC-SHA256" \\n hex(sha256(CanonicalRequest))
    Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))

CanonicalHeaders is one `name:trim(value)\\n` per signed header, in the order of
`SignedHeaders` as the client sorted it; HashedPayload is `x-acs-content-sha256`,
which must also be the SHA-256 of the body as received.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote

ALGORITHM = "ACS3-HMAC-SHA256"
WINDOW_S = 900  # "more than 15 minutes between client and server time" is InvalidTimeStamp.Expired
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_AUTH_RE = re.compile(
    r"^(?P<algorithm>[A-Z0-9-]+)\s+Credential=(?P<ak>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[a-z0-9\-;]+)"
    r"\s*,\s*Signature=(?P<signature>[0-9a-fA-F]{64})\s*$"
)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class AuthFailure(Exception):
    """`code` is the Alibaba error code the failure answers."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def percent_encode(text: str) -> str:
    """RFC 3986: unreserved characters kept, space as %20."""
    return quote(text, safe="-_.~")


def canonical_query(query_string: bytes | str) -> str:
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in parse_qsl(text, keep_blank_values=True))
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(method: str, path: str, query_string: bytes | str, headers: list[tuple[str, str]],
                      signed_headers: list[str], payload_hash: str) -> str:
    """`headers`: (lower-case name, value) pairs as received; a header sent twice is joined by ","."""
    lines = []
    for name in signed_headers:
        values = sorted(value.strip() for key, value in headers if key == name)
        lines.append(f"{name}:{','.join(values)}\n")
    return "\n".join([method.upper(), path or "/", canonical_query(query_string), "".join(lines),
                      ";".join(signed_headers), payload_hash])


def _signature(secret: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    return hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def acs_date(now: float) -> str:
    return datetime.fromtimestamp(int(now), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(access_key_id: str, secret: str, method: str, path: str, query_string: bytes | str,
         headers: dict[str, str], body: bytes) -> dict[str, str]:
    """`headers` (lower-case names, x-acs-date and x-acs-signature-nonce included) plus
    x-acs-content-sha256 and the Authorization header, every header given signed."""
    out = {k.lower(): v for k, v in headers.items()}
    out["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
    names = sorted(out)
    canonical = canonical_request(method, path, query_string, list(out.items()), names, out["x-acs-content-sha256"])
    out["authorization"] = (
        f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(names)},Signature={_signature(secret, canonical)}"
    )
    return out


@dataclass(frozen=True)
class Verified:
    access_key_id: str
    nonce: str
    signed_at: float


def verify(method: str, paths: list[str], query_string: bytes | str, headers: list[tuple[str, str]], body: bytes,
           secret_for, now: float) -> Verified:
    """Check an ACS3 request; raise AuthFailure with the error code it answers.

    `secret_for(ak)` gives the secret or None; `paths` are the paths the client may have
    signed. The nonce is returned, not recorded: the caller keeps it (core/replay.py).
    """
    def header(name: str) -> str | None:
        return next((v for k, v in headers if k == name), None)

    authorization = (header("authorization") or "").strip()
    if not authorization:
        raise AuthFailure("MissingSignature", "no Authorization")
    match = _AUTH_RE.match(authorization)
    if not match:
        raise AuthFailure("IncompleteSignature", "Authorization is not ACS3 Credential/SignedHeaders/Signature")
    if match["algorithm"] != ALGORITHM:
        raise AuthFailure("InvalidSignatureMethod", match["algorithm"])
    signed = match["signed"].split(";")
    unsigned = [k for k, _ in headers if k.startswith("x-acs-") and k not in signed]
    if "host" not in signed or unsigned or signed != sorted(signed):
        raise AuthFailure("IncompleteSignature", "host and every x-acs-* header must be signed, sorted")

    date = (header("x-acs-date") or "").strip()
    if not _DATE_RE.match(date):
        raise AuthFailure("InvalidTimeStamp.Format", "x-acs-date")
    try:
        signed_at = datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise AuthFailure("InvalidTimeStamp.Format", "x-acs-date") from None
    if abs(now - signed_at) > WINDOW_S:
        raise AuthFailure("InvalidTimeStamp.Expired", f"{date} vs now {int(now)}")
    nonce = (header("x-acs-signature-nonce") or "").strip()
    if not nonce:
        raise AuthFailure("MissingSignatureNonce", "x-acs-signature-nonce")

    access_key_id = match["ak"]
    secret = secret_for(access_key_id)
    if secret is None:
        raise AuthFailure("InvalidAccessKeyId.NotFound", access_key_id)
    if header("x-acs-security-token"):
        raise AuthFailure("invalidStsToken", "temporary credentials are not issued here")

    payload_hash = (header("x-acs-content-sha256") or "").strip().lower()
    body_ok = hmac.compare_digest(payload_hash.encode(), hashlib.sha256(body).hexdigest().encode())
    given = match["signature"].lower()
    signature_ok = False
    for path in paths:  # every candidate compared: timing does not tell which matched
        canonical = canonical_request(method, path, query_string, headers, signed, payload_hash)
        signature_ok |= hmac.compare_digest(_signature(secret, canonical), given)
    if not (body_ok and signature_ok):
        raise AuthFailure("SignatureDoesNotMatch", "ACS3 signature or body hash")
    return Verified(access_key_id, nonce, signed_at)
