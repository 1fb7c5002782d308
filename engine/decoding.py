"""From recognizer scores to a card number, using what card numbers must be.

Among the few readings the pixels support, prefer one that passes Luhn and
whose prefix and length are a known BIN. Never invent one: an alternative
digit is considered only where the recognizer itself gives it real
probability, and when two different numbers both fit, or the best reading is
weak, the answer is "cannot read". A wrong number that passes Luhn is the
worst possible answer.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

import bin_tables
from engine.models import ALPHABET

DIGIT_CLASSES = [ALPHABET.index(str(d)) + 1 for d in range(10)]
ALT_MIN_PROB = 0.08  # an alternative digit must have at least this probability at its column
MAX_UNCERTAIN = 3  # positions where alternatives are tried
ACCEPT_MIN_DIGIT = 0.55  # every digit read as the recognizer's first choice must be at least this sure
ACCEPT_MIN_CHANGED = 0.3  # a digit Luhn chose among the recognizer's alternatives must be at least this sure
ACCEPT_MIN_INVALID = 0.9  # a number that fails Luhn is reported only when every digit is this sure
SURE_DIGIT = 0.95  # below this a digit counts as unsure
AMBIGUITY_RATIO = 0.35  # a second valid number this close to the best makes the read ambiguous


@dataclass
class LineRead:
    text: str  # with spaces and '/', as read
    chars: list[tuple[str, int, np.ndarray]]  # (char, column, class probabilities at that column)


def greedy_read(probs: np.ndarray) -> LineRead:
    """Best-path CTC decode of T x C probabilities, keeping each char's peak column."""
    best = probs.argmax(1)
    chars = []
    prev = 0
    for t, c in enumerate(best):
        if c != 0 and c != prev:
            chars.append([ALPHABET[c - 1], t, probs[t]])
        elif c != 0 and c == prev and probs[t, c] > chars[-1][2][c]:
            chars[-1][1], chars[-1][2] = t, probs[t]
        prev = c
    return LineRead("".join(ch[0] for ch in chars), [tuple(ch) for ch in chars])


def merge_reads(reads: list[LineRead]) -> LineRead | None:
    """Average several reads of one line (different crops) digit by digit.

    Only reads that agree on the number of digits are merged (the most common
    count, at least two reads); the first of them gives the spacing. Averaging
    probabilities is an ensemble over crops: a digit one crop misreads is
    outvoted, and where the crops disagree the merged read is honestly unsure.
    """
    counts: dict[int, list[LineRead]] = {}
    for r in reads:
        counts.setdefault(sum(ch.isdigit() for ch, _, _ in r.chars), []).append(r)
    n, group = max(counts.items(), key=lambda kv: (len(kv[1]), kv[0]))
    if len(group) < 2 or n == 0:
        return None
    digit_probs = [np.mean([[p for ch, _, p in r.chars if ch.isdigit()][i] for r in group], axis=0) for i in range(n)]
    chars, k = [], 0
    for ch, col, p in group[0].chars:
        if ch.isdigit():
            p = digit_probs[k]
            ch = ALPHABET[int(np.argmax(p[1:]))] if np.argmax(p) != 0 else ch
            k += 1
        chars.append((ch, col, p))
    return LineRead("".join(c for c, _, _ in chars), chars)


@dataclass
class NumberDecision:
    digits: str
    printed: str
    digit_confidences: list[float]
    confidence: float
    columns: list[int]
    valid: bool  # Luhn and BIN length
    luhn_corrected: bool = False  # a digit was taken from the recognizer's alternatives

    @property
    def unsure_digits(self) -> int:
        """Luhn catches any single wrong digit, but two wrong digits pass it one time in ten:
        a valid number with more than one unsure digit needs other evidence."""
        return sum(c < SURE_DIGIT for c in self.digit_confidences)


def luhn_ok(digits: str) -> bool:
    return bin_tables.luhn_valid(digits)


def _plausible(digits: str) -> bool:
    return bin_tables.is_valid_pan(digits)


def decide_number(read: LineRead) -> NumberDecision | None:
    """Pick the card number from a line read, or None when it cannot be read with confidence."""
    digit_chars = [(ch, col, p) for ch, col, p in read.chars if ch.isdigit()]
    if not 12 <= len(digit_chars) <= 19:
        return None
    if re.search(r"\d[ /]*/[ /]*\d", read.text):
        # A number line prints no slash: one between its digits is a digit misread (a 7 read as
        # "/", and the 18 digits left passed Luhn, on a synthetic 19-digit card).
        return None
    # per position: the read digit's probability, relative to the mass on digits at that column
    base = "".join(ch for ch, _, _ in digit_chars)
    conf = []
    alts: list[list[tuple[str, float]]] = []
    for ch, _, p in digit_chars:
        dp = p[DIGIT_CLASSES]
        dp = dp / max(dp.sum(), 1e-9)
        conf.append(float(dp[int(ch)]))
        options = [(str(d), float(dp[d])) for d in np.argsort(-dp)[:3] if dp[d] >= ALT_MIN_PROB]
        alts.append(options or [(ch, 1.0)])
    uncertain = sorted(range(len(base)), key=lambda i: conf[i])[:MAX_UNCERTAIN]
    uncertain = [i for i in uncertain if len(alts[i]) > 1]
    candidates = []
    for combo in itertools.product(*[alts[i] for i in uncertain]):
        digits = list(base)
        score = 1.0
        for i, (d, p) in zip(uncertain, combo):
            digits[i] = d
            score *= p / conf[i]
        candidates.append(("".join(digits), score))
    candidates.sort(key=lambda c: -c[1])
    valid = [c for c in candidates if _plausible(c[0])]
    if valid:
        best, score = valid[0]
        if len(valid) > 1 and valid[1][1] >= AMBIGUITY_RATIO * score:
            return None  # two different valid numbers fit the pixels about as well
        if score < 0.3:
            return None  # Luhn would be forcing an answer the pixels do not support
        is_valid = True
    else:
        # Reported as an illegal card only when nothing but Luhn fails: a known BIN with a length
        # it issues. A dropped or extra digit is a misread, not an illegal card.
        entry = bin_tables.lookup(base)
        if entry is None or len(base) not in entry.pan_lengths:
            return None
        best, score = base, 1.0
        is_valid = False
    digit_conf = []
    for i, d in enumerate(best):
        p = digit_chars[i][2][DIGIT_CLASSES]
        digit_conf.append(float(p[int(d)] / max(p.sum(), 1e-9)))
    for i, c in enumerate(digit_conf):
        changed = best[i] != base[i]
        floor = ACCEPT_MIN_CHANGED if changed else (ACCEPT_MIN_DIGIT if is_valid else ACCEPT_MIN_INVALID)
        if c < floor:
            return None
    return NumberDecision(
        digits=best,
        printed=_regroup(read.text, base, best),
        digit_confidences=[round(c, 4) for c in digit_conf],
        confidence=round(float(np.prod(digit_conf) ** (1 / len(digit_conf))), 4),
        columns=[col for _, col, _ in digit_chars],
        valid=is_valid,
        luhn_corrected=best != base,
    )


def _regroup(text: str, read_digits: str, digits: str) -> str:
    """Keep the grouping as printed (spaces from the read), with the chosen digits."""
    groups = [g for g in re.sub(r"[^0-9 ]", "", text).split(" ") if g]
    if "".join(groups) != read_digits:
        return digits
    out, i = [], 0
    for g in groups:
        out.append(digits[i : i + len(g)])
        i += len(g)
    return " ".join(out)


# MM/YY, or MM/YYYY as some cards print it (05/2022): the year's first two digits must then be
# 20, and it is reported as MM/YY. Without the four-digit form, 05/2022 read as 05/20. A date
# printed year first (2008/04) is not MM/YY at all: "08/04" inside it is no date.
DATE_RE = re.compile(r"(?<!20)(?<!19)(\d{2})/(?:20(\d{2})(?!\d)|(\d{2}))")


def decide_date(read: LineRead, min_conf: float = 0.9) -> tuple[str, float] | None:
    """'MM/YY' from a date crop, or None. Month must be 01-12."""
    m = DATE_RE.search(read.text)
    if not m or not 1 <= int(m.group(1)) <= 12:
        return None
    confs = []
    for ch, _, p in read.chars[m.start() : m.end()]:
        confs.append(float(p[ALPHABET.index(ch) + 1]))
    conf = float(np.prod(confs) ** (1 / len(confs)))
    if conf < min_conf:
        return None
    return f"{m.group(1)}/{m.group(2) or m.group(3)}", round(conf, 4)


DATE_MIN_VOTES = 2  # a date must be read the same way from at least this many crops
DATE_MIN_CONF = 0.8  # ... each of those reads at least this sure (with crops cut by the box, 0.6 let a repeated misread through on the dev photos; with crops scaled to the number line, 0.8 reads 7/18 there with none wrong)


def vote_date(reads: list[LineRead], min_votes: int = DATE_MIN_VOTES, min_conf: float = DATE_MIN_CONF) -> tuple[str, float] | None:
    """'MM/YY' that several crops of one date field agree on, clearly ahead of any other, or None.

    Dates are small print, so a single crop is often cut a little high or low; crops that
    independently read the same valid month and year are far less likely to be wrong together.
    """
    votes: dict[str, list[float]] = {}
    for read in reads:
        got = decide_date(read, min_conf)
        if got:
            votes.setdefault(got[0], []).append(got[1])
    if not votes:
        return None
    ranked = sorted(votes.items(), key=lambda kv: (-len(kv[1]), -max(kv[1])))
    text, confs = ranked[0]
    if len(confs) < min_votes or (len(ranked) > 1 and len(ranked[1][1]) >= len(confs)):
        return None
    return text, round(float(np.mean(confs)), 4)
