"""Face++ cardpp bank card, client side: api_key/api_secret fields in a multipart body, and its answers.

Settings: `api_key`, `api_secret`, optional `version` ("v1", the default, or
"beta") for the offline compare; shadow mode keeps the version the client called.
"""
from __future__ import annotations

import secrets

from core.request import IncomingRequest
from adapters.facepp import request_fields
from core.shadow_table import ShadowTable
from core.wire import Outcome, Reply, WireRequest, digits, endpoint, host_of, json_object, normalize_bank, unreadable

REQUIRED = ("api_key", "api_secret")
NO_CARD = "NO_CARD"  # Face++ answers "nothing readable" as 200 with an empty list; named so it compares as an outcome


class Shadow(ShadowTable):
    """[facepp.shadow]"""

    api_key: str = ""
    api_secret: str = ""

    REQUIRED = REQUIRED


def multipart(fields: list[tuple[str, bytes]], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data body."""
    boundary = "cardgate" + secrets.token_hex(12)
    chunks = []
    for name, value in fields:
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n")
    for name, data in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="image.jpg"\r\n'
        chunks.append((head + "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def signed_post(values: dict[str, bytes], version: str, base_url: str, settings: dict) -> WireRequest:
    url = endpoint(base_url, f"/cardpp/{version}/ocrbankcard")
    fields = [("api_key", str(settings["api_key"]).encode()), ("api_secret", str(settings["api_secret"]).encode())]
    fields += [(name, value) for name, value in values.items() if name != "image_file"]
    files = [("image_file", values["image_file"])] if "image_file" in values else []
    body, content_type = multipart(fields, files)
    return WireRequest("POST", url, [("Content-Type", content_type), ("Host", host_of(url))], body)


def request_for_image(image: bytes, base_url: str, settings: dict, now: float) -> WireRequest:
    version = "beta" if settings.get("version") == "beta" else "v1"
    return signed_post({"image_file": image}, version, base_url, settings)


def resign(req: IncomingRequest, base_url: str, settings: dict, now: float) -> WireRequest:
    version = "v1" if "/v1/" in req.path else "beta"
    values = {name: value for name, value in request_fields(req).values.items() if name not in ("api_key", "api_secret")}
    return signed_post(values, version, base_url, settings)


def outcome(reply: Reply) -> Outcome:
    if reply.status == 413 and not reply.body.lstrip().startswith(b"{"):
        return Outcome(error_code=reply.body.decode("utf-8", "replace").strip() or "413")
    payload = json_object(reply)
    if payload is None:
        return unreadable(reply)
    if "error_message" in payload:
        return Outcome(error_code=str(payload["error_message"]).split(":", 1)[0].strip())
    cards = payload.get("bank_cards")
    if not isinstance(cards, list):
        return unreadable(reply)
    if not cards:
        return Outcome(error_code=NO_CARD)
    card = cards[0] if isinstance(cards[0], dict) else {}
    bank = card.get("bank")
    return Outcome(
        number=digits(str(card.get("number") or "")),
        bank=None if bank is None else normalize_bank("" if bank == "null" else str(bank)),
    )
