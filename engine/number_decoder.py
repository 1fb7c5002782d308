"""One constrained decoder for card numbers: a CTC prefix beam search over the number band's
per-column probabilities, its hypotheses scored by their probability times a length prior from
the BIN table, and only Luhn-valid numbers of a card's length answered.

A length the BIN table says the number's issuer or network does not issue is never answered (a
dropped or doubled digit, read clearly, passes Luhn one time in ten); a foreign card that the
table does not know at all (a 6360 Cirrus card) reads with the usual lengths' prior. Two thresholds decide (engine/policy.py): the answer's
share among the valid readings (a band the recognizer reads as two valid numbers is refused
rather than guessed), and the valid readings' share of everything the beam found (a band whose
pixels support no valid number is not forced into one by Luhn).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import bin_tables
from engine.ctc import align, prefix_beam_search
from engine.policy import DEFAULT_POLICY, Policy

DIGITS = "0123456789"


@dataclass
class NumberRead:
    digits: str
    printed: str  # digits grouped as the band spaces them
    confidence: float  # share of the beam's probability
    digit_confidences: list[float]
    valid: bool  # Luhn passes and the length is a card's
    sure: bool  # read clearly enough to answer (valid or not: a clear misprint is reported invalid)
    columns: tuple[int, int]  # first and last column of the number in the band
    read_digits: int  # digits in the likeliest reading, valid or not (for "is this a card at all")


def digit_probs(probs: np.ndarray, alphabet: str) -> np.ndarray:
    """T x (1 + 10): blank (with every non-digit class folded into it: spaces, letters and marks
    only separate digits) and the ten digits."""
    idx = [alphabet.index(d) + 1 for d in DIGITS]
    out = np.empty((probs.shape[0], 11), np.float32)
    out[:, 1:] = probs[:, idx]
    out[:, 0] = np.clip(1.0 - out[:, 1:].sum(1), 0.0, 1.0)
    return out


def length_prior(digits: str, policy: Policy) -> float:
    """How believable a card number of this length is for its prefix: the BIN table's issuer row
    or card network says which lengths it issues; a number the table does not know at all (a
    foreign card) gets the usual lengths' prior."""
    if len(digits) not in policy.pan_lengths or digits[:1] not in policy.pan_first_digits:
        return 0.0
    entry = bin_tables.lookup(digits)
    if entry is None:
        return policy.unknown_bin_length_prior.get(len(digits), policy.mismatched_length_prior)
    fits = entry.match == "bin" or (entry.match == "network" and len(digits) in entry.pan_lengths)
    return 1.0 if fits else policy.mismatched_length_prior


def decode_number(probs: np.ndarray, alphabet: str, policy: Policy = DEFAULT_POLICY) -> NumberRead | None:
    """The card number in a band's probabilities (T x classes, softmaxed), or None when the band
    holds no digits at all.

    The answer is the likeliest Luhn-valid number of a card's length (probability times length
    prior) where it stands out among the valid readings and those hold enough of the beam.
    Failing that, a number read clearly (the beam's first, alone past the threshold) but not
    Luhn-valid is answered as invalid; anything else is not sure."""
    p = digit_probs(probs, alphabet)
    beam = prefix_beam_search(p, policy.beam_width, policy.beam_prune)
    if not beam or not beam[0][0]:
        return None
    total = sum(prob for _, prob in beam) or 1.0
    top, top_share = beam[0][0], beam[0][1] / total
    valid = []  # (probability x length prior, probability, labels)
    for labels, prob in beam:
        digits = "".join(DIGITS[k - 1] for k in labels)
        prior = length_prior(digits, policy) if bin_tables.luhn_valid(digits) else 0.0
        if prior >= policy.min_length_prior:
            valid.append((prob * prior, prob, labels))
    if valid:
        # A card number always passes Luhn, so the answer is judged among the valid readings:
        # it must stand out among them, and they must hold enough of the beam's probability for
        # the pixels to support a valid number at all.
        weighted, prob, labels = max(valid)
        among_valid = weighted / sum(w for w, _, _ in valid)
        valid_mass = sum(q for _, q, _ in valid) / total
        if among_valid >= policy.min_number_posterior and valid_mass >= policy.min_valid_mass:
            return _read(p, labels, prob / total, valid=True, sure=True, read_digits=len(top))
    # A clear reading that fails Luhn is reported, as invalid (the vendors answer such a card as
    # illegal); one that passes Luhn but not the length test is a misread, and no answer.
    top_digits = "".join(DIGITS[k - 1] for k in top)
    clear = top_share >= policy.min_number_posterior and len(top) in policy.pan_lengths and top_digits[:1] in policy.pan_first_digits and not bin_tables.luhn_valid(top_digits)
    return _read(p, top, top_share, valid=False, sure=clear, read_digits=len(top))


def _read(p: np.ndarray, labels, share: float, valid: bool, sure: bool, read_digits: int) -> NumberRead:
    digits = "".join(DIGITS[k - 1] for k in labels)
    spans = align(p, tuple(labels)) or [(0, 0, 0.0)] * len(labels)
    return NumberRead(
        digits=digits,
        printed=_grouped(digits, spans),
        confidence=round(float(share), 4),
        digit_confidences=[round(c, 4) for _, _, c in spans],
        valid=valid,
        sure=sure,
        columns=(spans[0][0], spans[-1][1]),
        read_digits=read_digits,
    )


def _grouped(digits: str, spans) -> str:
    """Digits with a space wherever the gap to the next one is clearly wider than the usual
    digit pitch (the printed groups: 4-4-4-4, 6-13, ...)."""
    if len(digits) < 2:
        return digits
    centres = [(a + b) / 2 for a, b, _ in spans]
    gaps = np.diff(centres)
    pitch = float(np.median(gaps)) or 1.0
    out = digits[0]
    for d, gap in zip(digits[1:], gaps):
        out += (" " if gap > 1.5 * pitch else "") + d
    return out
