"""Tencent legacy myqcloud /ocr/bankcard, client side: the multi-use signature, and its answers.

Settings: `appid`, `secret_id`, `secret_key`, optional `bucket`. The mirrored
request carries the upstream's appid and bucket (the client's are ours), and is
always JSON: an uploaded image part travels as base64.
"""
from __future__ import annotations

import base64
import json

from core.request import IncomingRequest
from adapters.myqcloud import read_form
from adapters.myqcloud_auth import sign
from core.shadow_table import ShadowTable
from adapters.migrate.legacy_items import failed_outcome, items_outcome
from core.wire import Outcome, Reply, WireRequest, endpoint, host_of, json_object

REQUIRED = ("appid", "secret_id", "secret_key")
SIGN_VALIDITY_S = 60


class Shadow(ShadowTable):
    """[myqcloud.shadow]"""

    appid: str = ""
    secret_id: str = ""
    secret_key: str = ""
    bucket: str = ""

    REQUIRED = REQUIRED


def multi_use_sign(appid: str, bucket: str, secret_id: str, secret_key: str, now: float) -> str:
    """A multi-use signature for the upstream, valid SIGN_VALIDITY_S."""
    return sign(appid, bucket, secret_id, secret_key, now, SIGN_VALIDITY_S)


def signed_post(fields: dict, base_url: str, settings: dict, now: float) -> WireRequest:
    appid, bucket = str(settings["appid"]), str(settings.get("bucket") or "")
    body = {"appid": appid, **({"bucket": bucket} if bucket else {}), **fields}
    url = endpoint(base_url, "/ocr/bankcard")
    authorization = multi_use_sign(appid, bucket, str(settings["secret_id"]), str(settings["secret_key"]), now)
    headers = [("Content-Type", "application/json"), ("Host", host_of(url)), ("Authorization", authorization)]
    return WireRequest("POST", url, headers, json.dumps(body).encode())


def request_for_image(image: bytes, base_url: str, settings: dict, now: float) -> WireRequest:
    return signed_post({"image": base64.b64encode(image).decode("ascii")}, base_url, settings, now)


def resign(req: IncomingRequest, base_url: str, settings: dict, now: float) -> WireRequest:
    form = read_form(req)
    fields = {}
    if form.fields.get("url") is not None:
        fields["url"] = form.fields["url"]
    if form.has_image_file:
        fields["image"] = base64.b64encode(form.image_file or b"").decode("ascii")
    elif form.fields.get("image") is not None:
        fields["image"] = form.fields["image"]
    return signed_post(fields, base_url, settings, now)


def outcome(reply: Reply) -> Outcome:
    payload = json_object(reply)
    return failed_outcome(reply, payload, "code") or items_outcome((payload.get("data") or {}).get("items"))
