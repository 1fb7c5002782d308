"""The myqcloud (Tencent legacy image service) signature, in the `authorization` header:

    base64( HMAC-SHA1(SecretKey, plain) [20 bytes] + plain ),
    plain = "a=<appid>&b=<bucket>&k=<SecretId>&e=<expiry>&t=<now>&r=<rand>&f=..."

The field set and order differ between clients, so `verify` checks the HMAC over the
embedded plaintext exactly as sent, never over a rebuilt string; `sign` and
`MyqcloudAuth` write it in qcloud_image.Auth.get_sign's layout. `e=0` marks a
single-use signature, valid within SINGLE_USE_WINDOW_S of its `t` (the replay
check is the dialect's: adapters/myqcloud.py).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import httpx

from adapters.base import is_ascii_number
from adapters.myqcloud_errors import MyqcloudError

DIGEST_BYTES = 20  # HMAC-SHA1
EXPIRY_GRACE_S = 10  # clients sign with their own clock, and get_sign's default validity is only 30 s
SINGLE_USE_WINDOW_S = 300


@dataclass(frozen=True)
class Signature:
    digest: bytes  # the 20 HMAC-SHA1 bytes as sent
    plain: bytes  # the signed text as sent
    fields: dict[str, str]  # a, b, k, e, t, r, u, f ... as found

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def single_use(self) -> bool:
        return int(self.get("e")) == 0

    @property
    def signed_at(self) -> int:
        return int(self.get("t") or 0)


def decode_signature(header: str) -> Signature:
    """Split `authorization` into digest and plaintext; MyqcloudError 8 or 5 when it is not a signature."""
    text = "".join(header.split())
    text += "=" * (-len(text) % 4)  # some clients drop the padding
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MyqcloudError("8", "authorization is not base64") from None
    if len(raw) <= DIGEST_BYTES:
        raise MyqcloudError("5", "signature too short")
    digest, plain = raw[:DIGEST_BYTES], raw[DIGEST_BYTES:]
    try:
        text_plain = plain.decode("utf-8")
    except UnicodeDecodeError:
        raise MyqcloudError("5", "signed text is not UTF-8") from None
    fields: dict[str, str] = {}
    for pair in text_plain.split("&"):
        key, sep, value = pair.partition("=")
        if not sep or key in fields:
            raise MyqcloudError("5", "malformed signed text")
        fields[key] = value
    for required in ("a", "k", "e"):
        if not fields.get(required):
            raise MyqcloudError("5", f"signed text lacks {required}")
    if not is_ascii_number(fields["e"]) or (fields.get("t") and not is_ascii_number(fields["t"])):
        raise MyqcloudError("5", "e/t not numbers")
    return Signature(digest=digest, plain=plain, fields=fields)


def signature_digest(secret_key: str, plain: bytes) -> bytes:
    return hmac.new(secret_key.encode("utf-8"), plain, hashlib.sha1).digest()


def sign(appid: str, bucket: str, secret_id: str, secret_key: str, now: float, valid_s: int, nonce: int | None = None) -> str:
    """A multi-use signature valid for `valid_s` seconds (0: a single-use one)."""
    t = int(now)
    expiry = t + valid_s if valid_s else 0
    r = secrets.randbelow(10**9) if nonce is None else nonce
    plain = f"a={appid}&b={bucket}&k={secret_id}&e={expiry}&t={t}&r={r}&f=".encode()
    return base64.b64encode(signature_digest(secret_key, plain) + plain).decode("ascii")


def verify(header: str, apps: Mapping[str, Any], now: float) -> Signature:
    """The signature of `header`, checked against `apps` (appid -> .secret_id, .secret_key) and the clock.

    Raises MyqcloudError 8/5 (not a signature), 10 (appid unknown), 11 (SecretId not that
    app's), 5 (HMAC mismatch) or 9 (expired, or a single-use one outside its window)."""
    sign = decode_signature(header)
    app = apps.get(sign.get("a"))
    if app is None:
        raise MyqcloudError("10", "appid not configured")
    if not hmac.compare_digest(sign.get("k").encode(), app.secret_id.encode()):
        raise MyqcloudError("11", "SecretId not found for this appid")
    if not hmac.compare_digest(signature_digest(app.secret_key, sign.plain), sign.digest):
        raise MyqcloudError("5", "signature mismatch")
    if sign.single_use:
        if abs(now - sign.signed_at) > SINGLE_USE_WINDOW_S:
            raise MyqcloudError("9", "single-use signature outside its window")
    elif now > int(sign.get("e")) + EXPIRY_GRACE_S:
        raise MyqcloudError("9", "signature expired")
    return sign


class MyqcloudAuth(httpx.Auth):
    """Puts a fresh multi-use signature in `Authorization` of every request."""

    def __init__(self, appid: str, secret_id: str, secret_key: str, bucket: str = "", valid_s: int = 60,
                 clock: Callable[[], float] = time.time):
        self.appid, self.secret_id, self.secret_key, self.bucket = appid, secret_id, secret_key, bucket
        self.valid_s, self.clock = valid_s, clock

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = sign(self.appid, self.bucket, self.secret_id, self.secret_key, self.clock(), self.valid_s)
        yield request
