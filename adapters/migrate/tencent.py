"""Tencent Cloud API 3.0 BankCardOCR, client side: TC3-HMAC-SHA256 POST JSON, and its answers.

The mirrored request is always sent as a TC3 POST with a JSON body, whatever
style the client used (TC3 GET, legacy HmacSHA1/256 forms): the client's
signature covers our Host and cannot be forwarded, and one style is enough for
the upstream. A TC3 JSON body is forwarded byte for byte.
"""
from __future__ import annotations

import base64
import json

from core.request import IncomingRequest
from adapters.tencent import request_params
from adapters.tencent_auth import sign_tc3
from core.shadow_table import ShadowTable
from core.wire import Outcome, Reply, WireRequest, digits, endpoint, host_of, normalize_bank, normalize_expiry

REQUIRED = ("secret_id", "secret_key")
ACTION = "BankCardOCR"
VERSION = "2018-11-19"
# The action's own parameters; everything else in a legacy form (Signature, Nonce...) is the old signature's.
PARAMS = ("ImageBase64", "ImageUrl", "RetBorderCutImage", "RetCardNoImage", "EnableCopyCheck",
          "EnableReshootCheck", "EnableBorderCheck", "EnableQualityValue")
BOOLEAN_PARAMS = PARAMS[2:]


class Shadow(ShadowTable):
    """[tencent.shadow]"""

    secret_id: str = ""
    secret_key: str = ""
    region: str = ""  # X-TC-Region, when the upstream wants one

    REQUIRED = REQUIRED


def signed_post(body: bytes, base_url: str, settings: dict, now: float, language: str = "zh-CN") -> WireRequest:
    url = endpoint(base_url, "/")
    host = host_of(url)
    timestamp = int(now)
    headers = [
        ("Content-Type", "application/json"),
        ("Host", host),
        ("X-TC-Action", ACTION),
        ("X-TC-Version", VERSION),
        ("X-TC-Timestamp", str(timestamp)),
        ("X-TC-Language", language),
    ]
    if settings.get("region"):
        headers.append(("X-TC-Region", str(settings["region"])))
    signed = [("content-type", "application/json"), ("host", host)]
    headers.append(("Authorization", sign_tc3(str(settings["secret_id"]), str(settings["secret_key"]), "POST", signed, body, timestamp)))
    return WireRequest("POST", url, headers, body)


def request_for_image(image: bytes, base_url: str, settings: dict, now: float) -> WireRequest:
    params = {
        "ImageBase64": base64.b64encode(image).decode("ascii"),
        "EnableCopyCheck": True,
        "EnableReshootCheck": True,
        "EnableBorderCheck": True,
    }
    return signed_post(json.dumps(params).encode(), base_url, settings, now)


def _boolean(value):
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return value


def resign(req: IncomingRequest, base_url: str, settings: dict, now: float) -> WireRequest:
    language = req.header("x-tc-language") or "zh-CN"
    media = (req.header("content-type") or "").split(";", 1)[0].strip().lower()
    if req.method == "POST" and media in ("application/json", ""):
        body = req.body  # the client's JSON as sent
    else:
        params = request_params(req)
        language = "en-US" if str(params.get("Language", language)).lower() == "en-us" else language
        action_params = {k: (_boolean(params[k]) if k in BOOLEAN_PARAMS else params[k]) for k in PARAMS if k in params}
        body = json.dumps(action_params).encode()
    return signed_post(body, base_url, settings, now, language)


def outcome(reply: Reply) -> Outcome:
    try:
        response = json.loads(reply.body)["Response"]
    except (ValueError, KeyError, TypeError):
        return Outcome(failure=f"unreadable answer (HTTP {reply.status})")
    if not isinstance(response, dict):
        return Outcome(failure=f"unreadable answer (HTTP {reply.status})")
    error = response.get("Error")
    if isinstance(error, dict):
        return Outcome(error_code=str(error.get("Code")))
    return Outcome(
        number=digits(response.get("CardNo") or ""),
        expiry=normalize_expiry(response.get("ValidDate") or ""),
        bank=normalize_bank(response.get("BankInfo") or ""),
        kind=response.get("CardType") or "",
        warnings=sorted(str(code) for code in response.get("WarningCode") or []),
    )
