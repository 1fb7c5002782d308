"""Strict base64, as every vendor decodes an image field: the standard alphabet, padded, nothing else."""
from __future__ import annotations

import base64
import binascii

from core.errors import BadBase64Error


def strip_data_uri(text: str) -> str:
    """'data:image/jpeg;base64,AAAA' -> 'AAAA'; anything else unchanged."""
    if text.startswith("data:"):
        head, sep, payload = text.partition(",")
        if sep and head.endswith(";base64"):
            return payload
    return text


def decode_base64_strict(text: str | bytes, *, allow_data_uri: bool = False) -> bytes:
    """Standard-alphabet base64 with correct padding, no whitespace, not empty.

    Anything else (URL-safe alphabet, line breaks, missing padding, junk) raises
    BadBase64Error: vendors refuse such input, and so do we.
    """
    if isinstance(text, str):
        if allow_data_uri:
            text = strip_data_uri(text)
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError as exc:
            raise BadBase64Error("non-ASCII characters") from exc
    else:
        raw = bytes(text)
    if not raw:
        raise BadBase64Error("empty")
    if len(raw) % 4:
        raise BadBase64Error("length not a multiple of 4")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadBase64Error(str(exc)) from exc
