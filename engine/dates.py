"""Dates from a date band's probabilities: MM/YY, and which date it is.

The recognizer reads letters too, so the label printed beside a date says what it is: VALID
FROM / MEMBER SINCE before an issue date, VALID THRU / GOOD THRU / EXPIRES before an expiry. A
band that holds two dates (VALID FROM 01/20 THRU 01/25) gives the first as the issue date and
the last as the expiry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

# MM/YY or MM/YYYY (05/2022 is reported as 05/22). A date printed year first (2008/04) is no
# MM/YY date: "08/04" inside it is not matched. Spaces are not read reliably, so two dates side
# by side may come as one run of characters: "01/2008/25" is 01/20 and 08/25, not 01/2008.
DATE_RE = re.compile(r"(?<!(?<!/\d)\d)(?<!(?<!/)20)(?<!(?<!/)19)(0[1-9]|1[0-2])/(?:20(\d{2})(?=$|[^0-9/])|(\d{2})(?=$|[^0-9]|\d{2}/))")
ISSUE_WORDS = ("FROM", "SINCE", "ISSUE")
EXPIRY_WORDS = ("THRU", "EXP", "UNTIL", "END", "GOOD")


@dataclass
class DateRead:
    text: str  # MM/YY
    confidence: float
    kind: str | None  # "issue", "expiry", or None where no label says
    columns: tuple[int, int]


def greedy_text(probs: np.ndarray, alphabet: str) -> tuple[str, list[float], list[int]]:
    """Best-path text of a band, each character's peak probability and its column."""
    best = probs.argmax(1)
    text, confs, cols, prev = [], [], [], 0
    for t, k in enumerate(best):
        if k and k != prev:
            text.append(alphabet[k - 1])
            confs.append(float(probs[t, k]))
            cols.append(t)
        elif k and k == prev:
            confs[-1] = max(confs[-1], float(probs[t, k]))
        prev = k
    return "".join(text), confs, cols


def read_dates(probs: np.ndarray, alphabet: str, min_confidence: float) -> list[DateRead]:
    """Every MM/YY date in a band, left to right, read at least `min_confidence` sure (the mean
    of its characters' probabilities), each with the kind its label gives."""
    text, confs, cols = greedy_text(probs, alphabet)
    squeezed = "".join(c for c in text if c != " ")
    keep = [i for i, c in enumerate(text) if c != " "]
    out = []
    for m in DATE_RE.finditer(squeezed):
        idx = keep[m.start() : m.end()]
        conf = float(np.mean([confs[i] for i in idx]))
        if conf < min_confidence:
            continue
        before = squeezed[max(0, m.start() - 12) : m.start()]
        kind = "issue" if any(w in before for w in ISSUE_WORDS) else "expiry" if any(w in before for w in EXPIRY_WORDS) else None
        out.append(DateRead(f"{m.group(1)}/{m.group(2) or m.group(3)}", round(conf, 4), kind, (cols[idx[0]], cols[idx[-1]])))
    if len(out) >= 2:
        for d in out[:-1]:
            d.kind = d.kind or "issue"
        out[-1].kind = out[-1].kind or "expiry"
    return out


# What a date's left neighbour ends with when the date is the tail of a year written first
# (2008/04 whose tight band holds 08/04): a 19 or 20 that is no MM/YY's year, and at most one
# digit the located box missed.
YEAR_HEAD_RE = re.compile(r"(?<![/\d])(19|20)\d?$")


def in_context(dates: list[DateRead], left: np.ndarray, alphabet: str) -> list[DateRead]:
    """`dates` read from a tight band, checked against what lies left of it (`left`: the
    probabilities of a band of the same rows ending where the located date starts): dropped
    when that is the head of a year written first; otherwise an unlabelled date takes the kind
    a label there gives (VALID FROM / THRU)."""
    text = greedy_text(left, alphabet)[0].replace(" ", "")
    if YEAR_HEAD_RE.search(text):
        return []
    tail = text[-12:]
    label = "issue" if any(w in tail for w in ISSUE_WORDS) else "expiry" if any(w in tail for w in EXPIRY_WORDS) else None
    return [d if d.kind is not None else replace(d, kind=label) for d in dates]


def pick(dates: list[DateRead], wanted: str) -> DateRead | None:
    """The date of kind `wanted` among a located date's reads: one its label names, else an
    unlabelled one (the locator's channel said which it is); never one labelled otherwise."""
    named = [d for d in dates if d.kind == wanted]
    if named:
        return max(named, key=lambda d: d.confidence)
    unnamed = [d for d in dates if d.kind is None]
    return max(unnamed, key=lambda d: d.confidence) if unnamed else None
