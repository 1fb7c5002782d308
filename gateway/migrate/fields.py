"""Compare two answers field by field, and turn them into a record fit to keep (numbers masked).

A record (one JSON object, the same for shadow mode and the offline compare):

    {"time": 1700000000.0, "dialect": "tencent", "source": "shadow" | "compare", "id": "...",
     "sides": {"<name>": {"status", "latency_ms", "failure", "number" (masked), "expiry", "bank",
                          "kind", "warnings", "error_code"}, "<other name>": {...}},
     "fields": {"number": true | false | null, ...},   null: not comparable
     "agree": true | false | null,                       null: a side gave nothing comparable
     ...extra keys (answered_by, image, truth...)}
"""
from __future__ import annotations

import time

from core.wire import FIELDS, Outcome, Reply, mask


def field_agreement(a: Outcome, b: Outcome) -> dict[str, bool | None]:
    """field -> agree? None when a side failed, or when neither answer carries the field.

    The error code is always compared (both None: both succeeded).
    """
    if a.failure or b.failure:
        return {name: None for name in FIELDS}
    result: dict[str, bool | None] = {}
    for name in FIELDS:
        va, vb = a.value(name), b.value(name)
        if name != "error_code" and va is None and vb is None:
            result[name] = None
        else:
            result[name] = va == vb
    return result


def side_record(outcome: Outcome, reply: Reply) -> dict:
    """One side, fit to keep: the number masked, nothing of the image."""
    return {
        "status": reply.status,
        "latency_ms": reply.latency_ms,
        "failure": outcome.failure or reply.failure,
        "number": mask(outcome.number),
        "expiry": outcome.expiry,
        "bank": outcome.bank,
        "kind": outcome.kind,
        "warnings": outcome.warnings,
        "error_code": outcome.error_code,
    }


def comparison_record(
    dialect: str,
    source: str,
    record_id: str,
    sides: list[tuple[str, Outcome, Reply]],
    now: float | None = None,
    **extra,
) -> dict:
    (_, a, _), (_, b, _) = sides
    agreement = field_agreement(a, b)
    compared = [value for value in agreement.values() if value is not None]
    return {
        "time": round(time.time() if now is None else now, 3),
        "dialect": dialect,
        "source": source,
        "id": record_id,
        "sides": {name: side_record(outcome, reply) for name, outcome, reply in sides},
        "fields": agreement,
        "agree": all(compared) if compared else None,
        **extra,
    }
