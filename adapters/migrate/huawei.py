"""Huawei Cloud OCR v2 bank card, client side: SDK-HMAC-SHA256 (AK/SK) or X-Auth-Token, and its answers.

Settings: `access_key` + `secret_key` (or `token` for X-Auth-Token), and
`project_id` (shadow mode falls back to the project id of the client's path).
"""
from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlsplit

import msgspec

from core.request import IncomingRequest
from adapters.huawei_auth import sdk_date, sign_aksk
from core.shadow_table import ShadowTable
from core.wire import Outcome, Reply, WireRequest, digits, endpoint, host_of, json_object, normalize_bank, normalize_expiry, unreadable

REQUIRED: tuple[str, ...] = ()  # access_key + secret_key, or token: checked in check_settings
CONTENT_TYPE = "application/json;charset=utf-8"
USER_AGENT = "cardgate-shadow/0.1"


def check_settings(settings: dict) -> list[str]:
    if settings.get("token") or (settings.get("access_key") and settings.get("secret_key")):
        return []
    return ["access_key", "secret_key"]


class Shadow(ShadowTable):
    """[huawei.shadow]"""

    access_key: str = ""
    secret_key: str = ""
    token: str = ""  # X-Auth-Token instead of AK/SK
    project_id: str = ""  # "": the project id of the client's path

    def missing_credentials(self) -> list[str]:
        return check_settings(msgspec.structs.asdict(self))


def signed_post(body: bytes, base_url: str, project_id: str, settings: dict, now: float) -> WireRequest:
    url = endpoint(base_url, f"/v2/{quote(project_id, safe='')}/ocr/bankcard")
    headers = [("Content-Type", CONTENT_TYPE), ("Host", host_of(url)), ("User-Agent", USER_AGENT)]
    if settings.get("access_key") and settings.get("secret_key"):
        headers.append(("X-Sdk-Date", sdk_date(now)))
        parts = urlsplit(url)
        authorization = sign_aksk(str(settings["access_key"]), str(settings["secret_key"]), "POST", parts.path, parts.query, headers, body)
        headers.append(("Authorization", authorization))
    else:
        headers.append(("X-Auth-Token", str(settings.get("token") or "")))
    return WireRequest("POST", url, headers, body)


def request_for_image(image: bytes, base_url: str, settings: dict, now: float) -> WireRequest:
    body = json.dumps({"image": base64.b64encode(image).decode("ascii")}).encode()
    return signed_post(body, base_url, str(settings.get("project_id") or "cardgate"), settings, now)


def resign(req: IncomingRequest, base_url: str, settings: dict, now: float) -> WireRequest:
    project_id = str(settings.get("project_id") or req.path_params.get("project_id") or "cardgate")
    return signed_post(req.body, base_url, project_id, settings, now)


def outcome(reply: Reply) -> Outcome:
    payload = json_object(reply)
    if payload is None:
        return unreadable(reply)
    if "error_code" in payload:
        return Outcome(error_code=str(payload["error_code"]))
    result = payload.get("result")
    if not isinstance(result, dict):
        return unreadable(reply)
    return Outcome(
        number=digits(result.get("card_number") or ""),
        expiry=normalize_expiry(result.get("expiry_date") or ""),
        bank=normalize_bank(result.get("bank_name") or ""),
        kind=result.get("type") or "",
    )
