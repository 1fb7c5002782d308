"""Luhn/BIN-aware decoding: prefer valid numbers the pixels support, never force one."""
import numpy as np

from engine.decoding import decide_date, decide_number, greedy_read, vote_date
from engine.models import ALPHABET

C = len(ALPHABET) + 1


def cls(ch: str) -> int:
    return ALPHABET.index(ch) + 1


def frames(text: str, alts: dict[int, dict[str, float]] | None = None) -> np.ndarray:
    """CTC-like probabilities: each char on one column, separated by blank columns.

    alts[i] gives the probability of other characters at char i's column.
    """
    alts = alts or {}
    rows = []
    for i, ch in enumerate(text):
        p = np.full(C, 1e-4)
        extra = alts.get(i, {})
        for other, q in extra.items():
            p[cls(other)] = q
        p[cls(ch)] = 1.0 - sum(extra.values())
        rows.append(p / p.sum())
        blank = np.full(C, 1e-4)
        blank[0] = 1.0
        rows.append(blank / blank.sum())
    return np.array(rows)


VALID = "6225760088888883"  # Luhn-valid, CMB credit BIN, 16 digits


def test_greedy_read_keeps_spaces_and_columns():
    r = greedy_read(frames("6225 7600"))
    assert r.text == "6225 7600"
    assert [c[1] for c in r.chars] == [0, 2, 4, 6, 8, 10, 12, 14, 16]


def test_confident_valid_number_is_taken_as_read():
    d = decide_number(greedy_read(frames("6225 7600 8888 8883")))
    assert d.digits == VALID and d.valid
    assert d.printed == "6225 7600 8888 8883"
    assert len(d.digit_confidences) == 16 and min(d.digit_confidences) > 0.99


def test_uncertain_digit_resolved_by_luhn_when_the_pixels_support_it():
    # position 15 read as 5 (0.55) with 3 a real second choice (0.4): Luhn picks 3
    d = decide_number(greedy_read(frames("6225760088888885", {15: {"3": 0.4}})))
    assert d is not None and d.digits == VALID and d.valid and d.luhn_corrected
    assert not decide_number(greedy_read(frames(VALID))).luhn_corrected


def test_luhn_never_forces_a_digit_the_pixels_do_not_support():
    # the last digit reads 5 with near certainty; no supported alternative makes it valid
    d = decide_number(greedy_read(frames("6225760088888885")))
    assert d is None or d.digits != VALID
    if d is not None:
        assert not d.valid  # a confident read that fails Luhn is reported as such, not fixed


def test_two_valid_readings_that_fit_equally_are_refused():
    # two uncertain positions; several Luhn-valid combinations fit about equally -> cannot read
    alts = {3: {"0": 0.45}, 9: {"3": 0.45}, 12: {"9": 0.45}}
    d = decide_number(greedy_read(frames("6225760088888883", alts)))
    assert d is None or d.digits == VALID


def test_too_short_or_too_long_is_not_a_card_number():
    assert decide_number(greedy_read(frames("62257600"))) is None
    assert decide_number(greedy_read(frames("6" * 21))) is None


def test_grouping_of_19_digit_6_13_layout_is_kept():
    number = "6222602914177763172"
    d = decide_number(greedy_read(frames("622260 2914177763172")))
    assert d.digits == number and d.printed == "622260 2914177763172"


def test_a_slash_between_the_digits_of_a_number_line_is_a_misread():
    """On a synthetic 19-digit card the fast recognizer read a 7 as "/", surely, and the 18
    digits left passed Luhn for a known BIN: the worst answer there is. A number line prints no
    slash, so such a read decides nothing; a slash outside the digits (a card edge) is ignored."""
    assert decide_number(greedy_read(frames("6225 7600 8888 8883"))).digits == VALID
    assert decide_number(greedy_read(frames("6225 7600/8888 8883"))) is None
    assert decide_number(greedy_read(frames("6225760088 / 888883"))) is None
    assert decide_number(greedy_read(frames("/6225 7600 8888 8883 /"))).digits == VALID


def test_date_decoding():
    assert decide_date(greedy_read(frames("12/26")))[0] == "12/26"
    assert decide_date(greedy_read(frames("13/26"))) is None  # month 13
    assert decide_date(greedy_read(frames("1226"))) is None
    # a four-digit year is the year's last two digits, not its first two
    assert decide_date(greedy_read(frames("05/2022")))[0] == "05/22"
    assert decide_date(greedy_read(frames("12/20")))[0] == "12/20"
    assert decide_date(greedy_read(frames("12/203")))[0] == "12/20"
    # a weak month digit: no date rather than a guess
    assert decide_date(greedy_read(frames("09/24", {0: {"8": 0.6}}))) is None


def test_date_vote_needs_agreeing_crops():
    read = lambda text: greedy_read(frames(text))
    assert vote_date([read("09/24"), read("09/24"), read("981")])[0] == "09/24"
    assert vote_date([read("09/24"), read("981"), read("8/2")]) is None  # a lone read is not enough
    assert vote_date([read("09/24"), read("09/24"), read("06/24"), read("06/24")]) is None  # a tie
    assert vote_date([read("09/24"), read("09/24"), read("06/24")])[0] == "09/24"


def test_confident_read_failing_only_luhn_is_reported_as_invalid():
    d = decide_number(greedy_read(frames("4000 9876 5432 1012")))  # made up: Visa length, fails Luhn
    assert d is not None and d.digits == "4000987654321012" and not d.valid


def test_confident_read_of_the_wrong_length_is_not_an_illegal_card_but_unreadable():
    # a dropped digit: 15 digits under a 16-digit BIN
    assert decide_number(greedy_read(frames("622576008888888"))) is None


def test_reads_of_several_crops_are_merged_digit_by_digit():
    from engine.decoding import merge_reads

    good = greedy_read(frames("6225 7600 8888 8883"))
    slip = greedy_read(frames("6225 7600 8883 8883", {11: {"8": 0.3}}))  # one crop misreads a digit
    short = greedy_read(frames("6225 7600 8888 888"))  # another drops one: not merged
    merged = merge_reads([slip, good, short, good])
    assert merged is not None and merged.text.replace(" ", "") == VALID
    assert decide_number(merged).digits == VALID
    assert merge_reads([good]) is None  # one read is nothing to merge


def test_valid_read_with_two_unsure_digits_is_flagged_for_more_evidence():
    # Luhn-valid, but two digits are unsure: a two-digit slip passes Luhn one time in ten
    d = decide_number(greedy_read(frames("6225760088888883", {13: {"1": 0.1}, 15: {"5": 0.2}})))
    assert d is not None and d.valid and d.unsure_digits == 2
    assert decide_number(greedy_read(frames("6225760088888883"))).unsure_digits == 0


def test_crops_agreeing_on_an_unsure_number_are_not_enough():
    from engine.decoding import NumberDecision
    from engine.pipeline import _vote

    def dec(digits, unsure):
        confs = [0.7] * unsure + [1.0] * (len(digits) - unsure)
        return NumberDecision(digits, digits, confs, 0.9, [], True)

    assert _vote([dec(VALID, 1), dec(VALID, 3)]).digits == VALID  # two crops, one of them sure enough
    assert _vote([dec(VALID, 3), dec(VALID, 3), dec(VALID, 3)]) is None  # the same misread repeated
    assert _vote([dec(VALID, 2), dec(VALID, 2)]) is None  # two unsure digits pass Luhn one time in ten
    assert _vote([dec(VALID, 1)]) is None  # a lone read with an unsure digit
    bad = NumberDecision("6225760088888884", "6225760088888884", [1.0] * 16, 0.99, [], False)
    assert _vote([bad]) is None  # an illegal card read by one crop only: could be one misread digit
    assert _vote([bad, bad]) is bad  # two crops read the same illegal number
    assert _vote([dec(VALID, 0)]).digits == VALID  # a lone read, every digit sure, nobody disagreeing
    assert _vote([dec(VALID, 0), dec("6225760088888891", 0)]) is None  # ... but another crop reads another number
    assert _vote([dec(VALID, 0)], elsewhere=[bad]) is None  # ... or another view of the photo decided otherwise
    assert _vote([dec(VALID, 0)], elsewhere=[dec(VALID, 1)]).digits == VALID  # another view agreeing is fine
    fixed = NumberDecision(VALID, VALID, [1.0] * 15 + [0.4], 0.9, [], True, luhn_corrected=True)
    assert _vote([fixed, fixed]) is None  # every agreeing crop needed Luhn to pick a digit for it
    assert _vote([fixed, dec(VALID, 1)]).digits == VALID  # ... but one crop read it as it is
    other = "6225760088888891"
    assert _vote([dec(VALID, 0), dec(VALID, 0), dec(other, 0)]) is None  # 2 to 1 is too close


def test_a_voted_number_shorter_than_most_reads_of_its_line_dropped_a_digit():
    from engine.decoding import NumberDecision
    from engine.pipeline import _shorter_than_most

    nineteen = "6219884287743233748"
    reads = [greedy_read(frames(t)) for t in ("0219 8842 8774 3233 744",) * 5 + (" 6219 8842 8774 3233 74",) * 2]
    dropped = NumberDecision(nineteen[:18], nineteen[:18], [1.0] * 18, 0.99, [], True)
    assert _shorter_than_most(dropped, reads)
    # the close crops lose a digit at an end and the wide ones read it: the longer number stands
    eighteen = "621483000012345678"
    reads = [greedy_read(frames(t)) for t in ("621483 00001234567",) * 4 + (" 621483 000012345678",) * 3]
    assert not _shorter_than_most(NumberDecision(eighteen, eighteen, [1.0] * 18, 0.99, [], True), reads)
