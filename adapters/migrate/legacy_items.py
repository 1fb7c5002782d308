"""The `items` list of Tencent's legacy OCR answers, which myqcloud answers in and hex copies:
read into an Outcome by both their clients."""
from __future__ import annotations

from core.wire import Outcome, digits, normalize_bank, normalize_expiry

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
