"""Alibaba Cloud OCR RecognizeBankCard, client side: the image as the raw body, the action in
x-acs-* headers, signed with ACS3-HMAC-SHA256, and its answers (`Data` is a JSON string).

Settings: `access_key_id`, `access_key_secret`. Shadow mode forwards the client's body and
its `Url` query parameter, nothing else of its query.
"""
from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urlencode, urlsplit

from adapters.alibaba import ACTION, VERSION, query_fields
from adapters.alibaba_auth import acs_date, sign
from core.request import IncomingRequest
from core.shadow_table import ShadowTable
from core.wire import Outcome, Reply, WireRequest, digits, endpoint, host_of, json_object, normalize_bank, unreadable

REQUIRED = ("access_key_id", "access_key_secret")
_VALID_TO = re.compile(r"\s*(\d{4})\s*/\s*(\d{1,2})\s*")


class Shadow(ShadowTable):
    """[alibaba.shadow]"""

    access_key_id: str = ""
    access_key_secret: str = ""

    REQUIRED = REQUIRED


def signed_post(body: bytes, image_url: str, base_url: str, settings: dict, now: float) -> WireRequest:
    query = urlencode({"Url": image_url}) if image_url else ""
    url = endpoint(base_url, "/") + (f"?{query}" if query else "")
    headers = {
        "host": host_of(url),
        "content-type": "application/octet-stream",
        "x-acs-action": ACTION,
        "x-acs-version": VERSION,
        "x-acs-date": acs_date(now),
        "x-acs-signature-nonce": uuid.uuid4().hex,
    }
    signed = sign(str(settings["access_key_id"]), str(settings["access_key_secret"]), "POST", urlsplit(url).path or "/",
                  query, headers, body)
    return WireRequest("POST", url, list(signed.items()), body)


def request_for_image(image: bytes, base_url: str, settings: dict, now: float) -> WireRequest:
    return signed_post(image, "", base_url, settings, now)


def resign(req: IncomingRequest, base_url: str, settings: dict, now: float) -> WireRequest:
    return signed_post(req.body, "" if req.body else query_fields(req).get("Url", ""), base_url, settings, now)


def valid_to(text: str) -> str:
    """ "2026/08" (this API's YYYY/MM) -> "08/26"; anything else as given."""
    match = _VALID_TO.fullmatch(text)
    return f"{int(match[2]):02d}/{match[1][-2:]}" if match else text.strip()


def outcome(reply: Reply) -> Outcome:
    payload = json_object(reply)
    if payload is None:
        return unreadable(reply)
    if "Code" in payload and "Data" not in payload:
        return Outcome(error_code=str(payload["Code"]))
    try:
        data = json.loads(payload["Data"])["data"]
    except (KeyError, TypeError, ValueError):
        return unreadable(reply)
    if not isinstance(data, dict):
        return unreadable(reply)
    return Outcome(
        number=digits(str(data.get("cardNumber") or "")),
        expiry=valid_to(str(data.get("validToDate") or "")),
        bank=normalize_bank(str(data.get("bankName") or "")),
        kind=str(data.get("cardType") or ""),
    )
