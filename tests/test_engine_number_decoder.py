"""The constrained number decoder and the CTC search under it, on probability matrices built
by hand (what the recognizer would answer for a band), so each rule is seen on its own."""
import itertools

import numpy as np
import pytest

from engine.ctc import align, prefix_beam_search
from engine.number_decoder import decode_number
from engine.policy import Policy
from engine.textrec import CARD_ALPHABET

K = len(CARD_ALPHABET) + 1


def band(text: str, sure: float = 0.98, doubt: dict[int, dict[str, float]] | None = None) -> np.ndarray:
    """Columns for `text` as a recognizer reads a band: blank margins, each character over two
    columns, a blank between characters. `doubt[i]` spreads character i's columns over others."""
    rows = [_col({"": 1.0})] * 3
    for i, ch in enumerate(text):
        dist = doubt.get(i) if doubt and i in doubt else {ch: sure}
        rows += [_col(dist), _col(dist), _col({"": 1.0})]
    return np.array(rows + [_col({"": 1.0})] * 3)


def _col(dist: dict[str, float]) -> np.ndarray:
    col = np.full(K, 1e-4)
    for ch, p in dist.items():
        col[0 if ch == "" else CARD_ALPHABET.index(ch) + 1] = p
    rest = 1.0 - sum(dist.values())
    col[0] += max(rest, 0.0)
    return col / col.sum()


def test_a_clear_valid_number_is_answered_with_its_grouping():
    r = decode_number(band("6225 7600 8888 8883"), CARD_ALPHABET)
    assert (r.digits, r.valid, r.sure) == ("6225760088888883", True, True)
    assert r.printed == "6225 7600 8888 8883"
    assert r.confidence > 0.9 and len(r.digit_confidences) == 16


def test_luhn_picks_the_reading_the_pixels_allow():
    # digit 3 is 40% '8', 60% '3': "6225760088888888" fails Luhn, "...83" passes
    r = decode_number(band("6225760088888888", doubt={15: {"8": 0.6, "3": 0.39}}), CARD_ALPHABET)
    assert r.digits == "6225760088888883" and r.valid


def test_luhn_never_forces_a_digit_the_pixels_do_not_support():
    # the last digit is a sure '8': the Luhn-valid '3' has no support, so no valid answer
    r = decode_number(band("6225760088888888"), CARD_ALPHABET)
    assert not r.valid
    assert r.sure and r.digits == "6225760088888888"  # read clearly: reported, as invalid


def test_two_valid_readings_that_fit_equally_are_refused():
    # 6225760088888883 and 6225760088888833 both pass Luhn? find two valid ones one digit apart
    base = "622576008888888"
    valid = [base[:14] + a + b for a, b in itertools.product("0123456789", repeat=2) if _luhn(base[:14] + a + b)]
    a, b = valid[0], next(v for v in valid[1:] if v[14] != valid[0][14] and v[15] != valid[0][15])
    doubt = {14: {a[14]: 0.49, b[14]: 0.49}, 15: {a[15]: 0.49, b[15]: 0.49}}
    r = decode_number(band(a, doubt=doubt), CARD_ALPHABET)
    assert not r.valid and not r.sure


def test_too_short_for_a_card_is_not_sure():
    r = decode_number(band("62257600"), CARD_ALPHABET)
    assert not r.sure and not r.valid
    assert r.read_digits == 8


def test_a_reading_that_starts_with_0_is_no_card_number():
    # ISO/IEC 7812 assigns industry identifier 0 to no card issuer: neither a clear Luhn-failing
    # reading (a blank band read as zeros) nor a valid one is answered.
    clear_zeros = decode_number(band("0000000000010"), CARD_ALPHABET)
    assert not clear_zeros.sure and not clear_zeros.valid
    valid_zero = decode_number(band("0225760088888886"), CARD_ALPHABET)
    assert _luhn("0225760088888886") and not valid_zero.valid and not valid_zero.sure
    anywhere = Policy(pan_first_digits="0123456789")
    assert decode_number(band("0000000000010"), CARD_ALPHABET, anywhere).sure


def test_a_band_with_no_digits_decodes_to_nothing():
    assert decode_number(band("VALID"), CARD_ALPHABET) is None


def test_a_card_the_bin_table_does_not_know_still_reads():
    number = "6360" + "12345678901"
    number += next(d for d in "0123456789" if _luhn(number + d))
    r = decode_number(band(number), CARD_ALPHABET)
    assert r.digits == number and r.valid


def test_the_length_prior_prefers_a_length_the_bin_table_lists():
    # 622848 (ABC) issues 19-digit cards: a doubtful extra digit that makes 19 is preferred
    # to the 18-digit reading when both pass Luhn and the pixels weigh them alike
    policy = Policy()
    body = "62284803303464405"
    for d1, d2 in itertools.product("0123456789", repeat=2):
        long, short = body + d1 + d2, body + d2
        if _luhn(long) and _luhn(short):
            break
    doubt = {len(body): {d1: 0.45, "": 0.53}}
    r = decode_number(band(long, doubt=doubt), CARD_ALPHABET, policy)
    assert r.digits == long


def test_a_clear_reading_of_a_length_its_issuer_does_not_issue_is_no_answer():
    # 621669 (Bank of China) issues 19-digit cards: two digits dropped, the 17 left pass Luhn
    r = decode_number(band("62166976000020025"), CARD_ALPHABET)
    assert not r.valid and not r.sure


def test_letters_and_marks_only_separate_digits():
    r = decode_number(band("NO 6225 7600 8888 8883"), CARD_ALPHABET)
    assert r.digits == "6225760088888883" and r.valid


def test_prefix_beam_search_sums_every_path_of_a_labeling():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=4)  # 4 columns, blank + 2 labels
    exact: dict = {}
    for path in itertools.product(range(3), repeat=4):
        labels, prev = [], 0
        for k in path:
            if k and k != prev:
                labels.append(k)
            prev = k
        exact[tuple(labels)] = exact.get(tuple(labels), 0.0) + float(np.prod([probs[t, k] for t, k in enumerate(path)]))
    got = dict(prefix_beam_search(probs, beam=100, prune=0.0))
    for labels, p in exact.items():
        assert got[labels] == pytest.approx(p, rel=1e-6)


def test_align_places_each_label_in_its_columns():
    probs = band("123")
    digits = tuple(CARD_ALPHABET.index(c) + 1 for c in "123")
    spans = align(probs, digits)
    assert [(a, b) for a, b, _ in spans] == [(3, 4), (6, 7), (9, 10)]
    assert align(probs[:2], digits) is None  # three labels cannot fit in two columns


def _luhn(digits: str) -> bool:
    from bin_tables import luhn_valid

    return luhn_valid(digits)
