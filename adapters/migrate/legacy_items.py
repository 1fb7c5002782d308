"""The answers of Tencent's legacy OCR, which myqcloud answers in and hex copies: a numeric code
(0 for success) and an `items` list, read into an Outcome by both their clients."""
from __future__ import annotations

from core.wire import Outcome, Reply, digits, normalize_bank, normalize_expiry, unreadable

ITEM_FIELDS = {"卡号": "number", "卡类型": "kind", "银行信息": "bank", "有效期": "expiry"}


def items_outcome(items) -> Outcome:
    found = {"number": "", "kind": "", "bank": "", "expiry": ""}
    for item in items or []:
        name = ITEM_FIELDS.get(item.get("item")) if isinstance(item, dict) else None
        if name:
            found[name] = str(item.get("itemstring") or "")
    return Outcome(
        number=digits(found["number"]),
        expiry=normalize_expiry(found["expiry"]),
        bank=normalize_bank(found["bank"]),
        kind=found["kind"],
    )


def failed_outcome(reply: Reply, payload: dict | None, field: str) -> Outcome | None:
    """The Outcome of an answer whose numeric `field` is unreadable or not 0; None for a success."""
    try:
        code = int(payload[field])
    except (KeyError, TypeError, ValueError):
        return unreadable(reply)
    return Outcome(error_code=str(code)) if code != 0 else None
