"""Dates from a date band's probabilities: MM/YY, and which date it is.

The recognizer reads letters too, so the label printed beside a date says what it is: VALID
FROM / MEMBER SINCE before an issue date, VALID THRU / GOOD THRU / EXPIRES before an expiry. A
band that holds two dates (VALID FROM 01/20 THRU 01/25) gives the first as the issue date and
the last as the expiry.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

import numpy as np

from engine.ctc import Pattern, spot

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


def read_dates(probs: np.ndarray, alphabet: str, min_confidence: float, min_spot_share: float = 0.0) -> list[DateRead]:
    """Every MM/YY date in a band, left to right, read at least `min_confidence` sure (the mean
    of its characters' probabilities), each with the kind its label gives. Where the best path
    spells none, the one date spot_date finds (with min_spot_share; 0 where it is not asked)."""
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
    if not out and min_spot_share > 0:
        spotted = spot_date(probs, alphabet, min_confidence, min_spot_share)
        out = [spotted] if spotted else []
    return out


@functools.lru_cache(maxsize=None)
def date_pattern(alphabet: str) -> Pattern:
    """Every MM/YY and MM/20YY, as one graph over `alphabet`'s classes."""
    classes: list[int] = []

    def nodes(chars: str) -> list[int]:
        classes.extend(alphabet.index(c) + 1 for c in chars)
        return list(range(len(classes) - len(chars), len(classes)))

    digits = "0123456789"
    m1, m2, slash = nodes("01"), nodes(digits), nodes("/")
    y1, y2, c2, c0, z1, z2 = nodes(digits), nodes(digits), nodes("2"), nodes("0"), nodes(digits), nodes(digits)
    edges = [(m1[0], m2[d]) for d in range(1, 10)] + [(m1[1], m2[d]) for d in range(3)]  # months 01-12
    edges += [(a, slash[0]) for a in m2] + [(slash[0], b) for b in y1 + c2]
    edges += [(a, b) for a in y1 for b in y2] + [(c2[0], c0[0])] + [(c0[0], b) for b in z1] + [(a, b) for a in z1 for b in z2]
    return Pattern(tuple(classes), tuple(edges), tuple(m1), tuple(y2 + z2))


def spot_date(probs: np.ndarray, alphabet: str, min_confidence: float, min_share: float) -> DateRead | None:
    """Where the best path spells no date (a stray glyph beside it, a faint '/'): the date that
    costs the band least to spell among every MM/YY and MM/20YY, with no digit or '/' around it
    (engine.ctc.spot), if that reading of the band is at least `min_share` as likely as the best
    path and its characters are at least `min_confidence` sure on average. A digit read surely
    beside it makes it costly: 2008/04 holds no date 08/04."""
    pattern = date_pattern(alphabet)
    around = np.array([0] + [i + 1 for i, c in enumerate(alphabet) if c not in "0123456789/"])
    hit = spot(probs, pattern, around)
    if hit is None:
        return None
    cost, spans = hit
    confidence = float(np.mean([p for *_, p in spans]))
    if confidence < min_confidence or cost < np.log(min_share):
        return None
    spelled = "".join(alphabet[pattern.classes[i] - 1] for i, *_ in spans)
    first, last = spans[0][1], spans[-1][2]
    text, _, cols = greedy_text(probs, alphabet)
    head = "".join(c for c, col in zip(text, cols) if col < first).replace(" ", "")[-12:]
    kind = "issue" if any(w in head for w in ISSUE_WORDS) else "expiry" if any(w in head for w in EXPIRY_WORDS) else None
    return DateRead(spelled[:3] + spelled[-2:], round(confidence, 4), kind, (first, last))


# What a date's left neighbour ends with when the date is the tail of a year written first
# (2008/04 whose tight band holds 08/04): a 19 or 20 that is no MM/YY's year, and at most one
# digit the located box missed.
YEAR_HEAD_RE = re.compile(r"(?<![/\d])(19|20)\d?$")


def in_context(dates: list[DateRead], left: np.ndarray, alphabet: str, min_confidence: float = 0.0) -> list[DateRead]:
    """`dates` read from a tight band, checked against what lies left of it (`left`: the
    probabilities of a band of the same rows ending where the located date starts): dropped
    when that, in characters read at least `min_confidence` sure, is the head of a year written
    first (a label in a script the recognizer does not know reads as weak digits); otherwise an
    unlabelled date takes the kind a label there gives (VALID FROM / THRU)."""
    text, confs, _ = greedy_text(left, alphabet)
    if YEAR_HEAD_RE.search("".join(c for c, p in zip(text, confs) if p >= min_confidence and c != " ")):
        return []
    tail = text.replace(" ", "")[-12:]
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
