"""Which OCR lines of a real photo are dates, and which date each is (engine/train/real_dates.py)."""
import numpy as np

from engine.train.real_dates import photo_dates


def _line(text, x0, y0, x1, y1, score=0.99):
    return {"text": text, "score": score, "quad": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}


def _kinds(lines):
    return [k for k, _ in photo_dates(lines)]


def test_a_date_is_a_slash_between_digit_runs_not_a_caption_or_an_address():
    assert _kinds([_line("MONTH/YEAR", 0, 0, 60, 10), _line("weibo.com/cmbchina", 0, 50, 200, 60), _line("6222 8888", 0, 80, 200, 100)]) == []
    assert _kinds([_line("BB/B8", 100, 20, 140, 40)]) == [None]  # embossed digits misread: still a date's place


def test_the_kind_comes_from_the_label_in_the_line_or_just_left_of_it():
    assert _kinds([_line("有效期限08/24", 0, 0, 120, 20)]) == ["expiry"]
    assert _kinds([_line("ISSUE 10/2005", 0, 0, 120, 20)]) == ["issue"]
    assert _kinds([_line("THRU", 60, 12, 90, 22), _line("12/25", 100, 5, 150, 25)]) == ["expiry"]
    assert _kinds([_line("FROM", 60, 12, 90, 22), _line("12/20", 100, 5, 150, 25)]) == ["issue"]
    assert _kinds([_line("THRU", 0, 12, 30, 22), _line("12/25", 300, 5, 350, 25)]) == [None]  # too far left to be its label


def test_two_unlabelled_dates_are_from_then_thru_and_a_range_is_split():
    dates = photo_dates([_line("06/16", 200, 0, 250, 20), _line("06/12", 100, 0, 150, 20)])
    assert [(k, round(float(q[0, 0]), 1)) for k, q in dates] == [("issue", 103.2), ("expiry", 203.2)]  # 0.16 of 20 px in
    dates = photo_dates([_line("00/00-00/00", 0, 0, 110, 20)])
    assert [k for k, _ in dates] == ["issue", "expiry"]
    assert dates[0][1][1, 0] <= 50 <= dates[1][1][0, 0]  # each half of the line's box (the dash between)


def test_a_date_inside_a_labelled_line_is_cut_out_by_character_widths():
    (kind, quad), = photo_dates([_line("有效期限08/24", 0, 0, 130, 20)])  # 4 CJK (2 wide each) + 5 characters
    assert kind == "expiry"
    # The cut at x=80, moved 0.26 of the line's height left; its end 0.1 of it inside the box.
    assert np.allclose(quad[:, 0], [80 - 5.2, 128, 128, 80 - 5.2])
