"""Shadow-mode counters, and their Prometheus text form (for /metrics).

    cardgate_shadow_comparisons_total{dialect}
    cardgate_shadow_field_total{dialect,field,result="agree"|"disagree"}
    cardgate_shadow_upstream_errors_total{dialect,reason}   timeout, connect, unreadable, http_5xx, ...
    cardgate_shadow_local_errors_total{dialect,reason}      the local side failed while mirrored
    cardgate_shadow_mirror_drops_total{dialect}             the mirror queue was full
    cardgate_shadow_fallbacks_total{dialect}                answer="upstream" failed, local answered
"""
from __future__ import annotations

import threading
from collections import Counter

METRIC_PREFIX = "cardgate_shadow_"


def failure_reason(failure: str | None, status: int | None) -> str | None:
    """A short, fixed label for a failed side (None: it did not fail)."""
    if failure:
        return failure.split()[0].rstrip(":")
    if status is not None and status >= 500:
        return "http_5xx"
    return None


class ShadowCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.comparisons: Counter = Counter()  # dialect
        self.fields: Counter = Counter()  # (dialect, field, "agree" | "disagree")
        self.upstream_errors: Counter = Counter()  # (dialect, reason)
        self.local_errors: Counter = Counter()  # (dialect, reason)
        self.drops: Counter = Counter()  # dialect
        self.fallbacks: Counter = Counter()  # dialect

    def count_record(self, record: dict, upstream_side: str = "upstream", local_side: str = "local") -> None:
        dialect = record["dialect"]
        with self._lock:
            self.comparisons[dialect] += 1
            for name, agree in record["fields"].items():
                if agree is not None:
                    self.fields[(dialect, name, "agree" if agree else "disagree")] += 1
            for side, counter in ((upstream_side, self.upstream_errors), (local_side, self.local_errors)):
                data = record["sides"].get(side) or {}
                reason = failure_reason(data.get("failure"), data.get("status"))
                if reason:
                    counter[(dialect, reason)] += 1

    def count_drop(self, dialect: str) -> None:
        with self._lock:
            self.drops[dialect] += 1

    def count_fallback(self, dialect: str) -> None:
        with self._lock:
            self.fallbacks[dialect] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "comparisons": dict(self.comparisons),
                "fields": dict(self.fields),
                "upstream_errors": dict(self.upstream_errors),
                "local_errors": dict(self.local_errors),
                "drops": dict(self.drops),
                "fallbacks": dict(self.fallbacks),
            }


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items())
    return "{" + inner + "}"


def render_prometheus(counters: ShadowCounters) -> str:
    """The counters in the Prometheus text exposition format."""
    snap = counters.snapshot()
    out: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[dict, int]]) -> None:
        out.append(f"# HELP {METRIC_PREFIX}{name} {help_text}")
        out.append(f"# TYPE {METRIC_PREFIX}{name} counter")
        for labels, value in sorted(samples, key=lambda s: sorted(s[0].items())):
            out.append(f"{METRIC_PREFIX}{name}{_labels(**labels)} {value}")

    family("comparisons_total", "Shadow comparisons recorded.",
           [({"dialect": d}, n) for d, n in snap["comparisons"].items()])
    family("field_total", "Compared fields, by result.",
           [({"dialect": d, "field": f, "result": r}, n) for (d, f, r), n in snap["fields"].items()])
    family("upstream_errors_total", "Upstream sides that failed or answered 5xx.",
           [({"dialect": d, "reason": r}, n) for (d, r), n in snap["upstream_errors"].items()])
    family("local_errors_total", "Local sides that failed or answered 5xx.",
           [({"dialect": d, "reason": r}, n) for (d, r), n in snap["local_errors"].items()])
    family("mirror_drops_total", "Mirrored requests dropped because the mirror queue was full.",
           [({"dialect": d}, n) for d, n in snap["drops"].items()])
    family("fallbacks_total", "Requests answered locally because the answering upstream failed.",
           [({"dialect": d}, n) for d, n in snap["fallbacks"].items()])
    return "\n".join(out) + "\n"
