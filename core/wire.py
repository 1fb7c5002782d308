"""What travels between the gateway and an upstream, and what is compared.

WireRequest: a fully built (signed) HTTP request. Reply: what came back, or why
nothing did. Outcome: the comparable fields read from one vendor answer, in a
vendor-neutral form (digits-only number, "MM/YY" expiry, bank name without its
institution code, vendor warning codes as strings, the vendor's error code).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# The fields a comparison covers, in report order.
FIELDS = ("number", "expiry", "bank", "kind", "warnings", "error_code")


@dataclass
class WireRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass
class Reply:
    """One side's HTTP answer. `failure` is set (and `status` None) when none came back."""

    status: int | None
    content_type: str = ""
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    latency_ms: float = 0.0
    failure: str | None = None  # "timeout", "connect", "error", "build" (could not sign/build the request)


@dataclass
class Outcome:
    """Comparable fields of one answer. None: this dialect's answer does not carry the field."""

    number: str | None = None
    expiry: str | None = None
    bank: str | None = None
    kind: str | None = None
    warnings: list[str] | None = None
    error_code: str | None = None
    failure: str | None = None  # nothing comparable came back (transport failure, unreadable body)

    def value(self, name: str):
        return getattr(self, name)


def unreadable(reply: Reply) -> Outcome:
    return Outcome(failure=f"unreadable answer (HTTP {reply.status})")


def json_object(reply: Reply) -> dict | None:
    """The answer's body as a JSON object, or None when it is not one."""
    try:
        payload = json.loads(reply.body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def endpoint(base_url: str, path: str) -> str:
    """The upstream base URL (which may carry a prefix such as /tencent) joined with a vendor path."""
    return base_url.rstrip("/") + path


def host_of(url: str) -> str:
    """The Host header a client sends for `url` (port only when given)."""
    return urlsplit(url).netloc


_EXPIRY_RE = re.compile(r"\s*(\d{1,2})\s*/\s*(\d{4}|\d{2})\s*")


def normalize_expiry(text: str | None) -> str | None:
    """ "08/2022", "08/22", " 8/22" -> "08/22"; "" stays ""; unreadable text is kept as is."""
    if text is None:
        return None
    match = _EXPIRY_RE.fullmatch(text)
    if not match:
        return text.strip()
    month, year = match.groups()
    return f"{int(month):02d}/{year[-2:]}"


_BANK_CODE_RE = re.compile(r"\s*[(（]\s*\d+\s*[)）]\s*$")


def normalize_bank(text: str | None) -> str | None:
    """ "招商银行(03080000)" -> "招商银行": the name alone, whatever each side prints after it."""
    if text is None:
        return None
    return _BANK_CODE_RE.sub("", text).strip()


def digits(text: str | None) -> str | None:
    return None if text is None else re.sub(r"\D", "", text)


def mask(number: str | None) -> str | None:
    """First 6 + last 4: the most of a card number that may be recorded or shown."""
    if not number:
        return number
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]
