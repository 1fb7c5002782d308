"""The self-hosted hex API, client side: JSON with an optional token header, and its answers.

Settings (all optional): `token`, `token_header` (default "Authorization").
The client's own token header is ours and is never forwarded.
"""
from __future__ import annotations

import base64
import json

from core.request import IncomingRequest
from core.shadow_table import ShadowTable
from adapters.migrate.legacy_items import failed_outcome, items_outcome
from core.wire import Outcome, Reply, WireRequest, endpoint, host_of, json_object

REQUIRED: tuple[str, ...] = ()
PATH = "/hex/ocrapi/creditcardocr"


class Shadow(ShadowTable):
    """[hex.shadow]"""

    token: str = ""
    token_header: str = "Authorization"


def signed_post(body: bytes, base_url: str, settings: dict) -> WireRequest:
    url = endpoint(base_url, PATH)
    headers = [("Content-Type", "application/json"), ("Host", host_of(url))]
    if settings.get("token"):
        headers.append((str(settings.get("token_header") or "Authorization"), str(settings["token"])))
    return WireRequest("POST", url, headers, body)


def request_for_image(image: bytes, base_url: str, settings: dict, now: float) -> WireRequest:
    body = {
        "image": base64.b64encode(image).decode("ascii"),
        "options": {
            "enable_border_check": True,
            "enable_reshoot_check": True,
            "enable_copy_check": True,
            "enable_recognize_warn_code": True,
            "ret_card_no_image": False,
        },
    }
    return signed_post(json.dumps(body).encode(), base_url, settings)


def resign(req: IncomingRequest, base_url: str, settings: dict, now: float) -> WireRequest:
    return signed_post(req.body, base_url, settings)


def outcome(reply: Reply) -> Outcome:
    payload = json_object(reply)
    failed = failed_outcome(reply, payload, "errorcode")
    if failed is not None:
        return failed
    result = items_outcome(payload.get("items"))
    if "recognize_warn_code" in payload:
        result.warnings = sorted(str(code) for code in payload["recognize_warn_code"] or [])
    elif "warncode" in payload:
        result.warnings = [str(payload["warncode"])] if payload["warncode"] else []
    # else: the client asked for no warnings, nothing to compare (warnings stay None)
    return result
