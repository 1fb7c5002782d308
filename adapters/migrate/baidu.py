"""Baidu AI Cloud OCR bank card, client side: a urlencoded form POST, signed with bce-auth-v1
(an IAM key pair) or carrying an OAuth access token, and its answers.

Settings: `access_key` + `secret_access_key` (bce-auth-v1), or `access_token` (a token the
upstream issued: the client does not run the OAuth exchange itself). The client's own
access_token never travels upstream: its query is dropped and the body forwarded as sent.
"""
from __future__ import annotations

import base64
from urllib.parse import urlencode, urlsplit

import msgspec

from adapters.baidu import BANKCARD_PATH
from adapters.baidu_auth import sign
from core.request import IncomingRequest
from core.shadow_table import ShadowTable
from core.wire import Outcome, Reply, WireRequest, digits, endpoint, host_of, json_object, normalize_bank, normalize_expiry, unreadable

REQUIRED: tuple[str, ...] = ()  # access_key + secret_access_key, or access_token: checked in check_settings
CONTENT_TYPE = "application/x-www-form-urlencoded"
SIGNED_HEADERS = ["host", "content-type"]


def check_settings(settings: dict) -> list[str]:
    if settings.get("access_token") or (settings.get("access_key") and settings.get("secret_access_key")):
        return []
    return ["access_key", "secret_access_key"]


class Shadow(ShadowTable):
    """[baidu.shadow]"""

    access_key: str = ""
    secret_access_key: str = ""
    access_token: str = ""  # instead of the key pair

    def missing_credentials(self) -> list[str]:
        return check_settings(msgspec.structs.asdict(self))


def signed_post(body: bytes, base_url: str, settings: dict, now: float) -> WireRequest:
    url = endpoint(base_url, BANKCARD_PATH)
    host = host_of(url)
    headers = [("Content-Type", CONTENT_TYPE), ("Host", host)]
    if settings.get("access_key") and settings.get("secret_access_key"):
        parts = urlsplit(url)
        signed = {"host": host, "content-type": CONTENT_TYPE}
        headers.append(("Authorization", sign(str(settings["access_key"]), str(settings["secret_access_key"]), "POST",
                                              parts.path, "", signed, SIGNED_HEADERS, now)))
    else:
        url += "?" + urlencode({"access_token": str(settings.get("access_token") or "")})
    return WireRequest("POST", url, headers, body)


def request_for_image(image: bytes, base_url: str, settings: dict, now: float) -> WireRequest:
    body = urlencode({"image": base64.b64encode(image).decode("ascii"), "detect_quality": "true"}).encode("ascii")
    return signed_post(body, base_url, settings, now)


def resign(req: IncomingRequest, base_url: str, settings: dict, now: float) -> WireRequest:
    return signed_post(req.body, base_url, settings, now)


def outcome(reply: Reply) -> Outcome:
    payload = json_object(reply)
    if payload is None:
        return unreadable(reply)
    if "error_code" in payload:
        return Outcome(error_code=str(payload["error_code"]))
    if "error" in payload:  # the OAuth endpoint's shape
        return Outcome(error_code=str(payload["error"]))
    result = payload.get("result")
    if not isinstance(result, dict):
        return unreadable(reply)
    return Outcome(
        number=digits(str(result.get("bank_card_number") or "")),
        expiry=normalize_expiry(str(result.get("valid_date") or "")),
        bank=normalize_bank(str(result.get("bank_name") or "")),
        kind=str(result.get("bank_card_type", "")),
    )
