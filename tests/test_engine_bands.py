"""Band cutting: the number band spans the card's whole width, so no digit is cut off at an
end; a date band leaves room for the first digits and the label; columns map back to the card."""
import numpy as np

from engine.dates import in_context, pick, read_dates
from engine.geometry import RECT_H, RECT_W
from engine.recognition import Band, date_band, number_band
from engine.textrec import CARD_ALPHABET


def test_the_number_band_runs_the_whole_card_width_around_the_located_rows():
    band = number_band((300.0, 300.0, 500.0, 340.0), margin=0.35)  # a box that stops short of the digits
    assert (band.x0, band.x1) == (0, RECT_W)
    assert (band.y0, band.y1) == (286, 354)


def test_bands_stay_on_the_card():
    assert number_band((0.0, 2.0, 856.0, 42.0), margin=0.5) == Band(0, 0, RECT_W, 62)
    b = date_band((20.0, 520.0, 120.0, 538.0), line_height=40.0, margin=0.45, left=1.5, right=0.8, min_height=0.8)
    assert b.x0 == 0 and b.y1 == RECT_H and b.x1 == 152


def test_a_date_band_is_at_least_most_of_a_number_line_tall_and_reaches_left():
    b = date_band((400.0, 400.0, 480.0, 410.0), line_height=40.0, margin=0.0, left=1.5, right=0.8, min_height=0.8)  # a thin located box
    assert b.y1 - b.y0 == 32  # 0.8 line heights
    assert b.x0 == 340 and b.x1 == 512


def test_columns_map_back_to_the_band_on_the_card():
    band = Band(0, 100, 800, 160)
    assert band.columns_to_box(10, 19, columns=100) == (80.0, 100, 160.0, 160)
    card = np.zeros((RECT_H, RECT_W, 3), np.uint8)
    assert band.cut(card).shape == (60, 800, 3)


def test_a_line_found_aslant_gives_a_band_that_follows_it_past_the_outline():
    # a line 40 px tall rising 0.05 px per px, boxed from x 100 to 700: the box is 30 px taller than the line
    band = number_band((100.0, 285.0, 700.0, 355.0), margin=0.25, slope=0.05, height=40.0, past_edges=0.03)
    assert (band.x0, band.x1) == (-26, RECT_W + 26)
    centre = 320 + 0.05 * (RECT_W / 2 - 400)  # the line's centre at the card's middle column
    assert (band.y0, band.y1) == (int(centre - 30), int(centre + 30))
    quad = band.columns_to_quad(0, 99, columns=100)
    assert abs((quad[1][1] - quad[0][1]) - 0.05 * (band.x1 - band.x0)) < 1e-3  # its top edge follows the line's slope


def test_a_sloped_band_is_read_straightened_from_the_photo():
    photo = np.full((RECT_H, RECT_W), 255, np.uint8)
    xs = np.arange(RECT_W)
    for x in xs:  # a dark line 20 px tall, centred on 270 + 0.1 (x - 428)
        c = int(round(270 + 0.1 * (x - 428)))
        photo[c - 10 : c + 10, x] = 0
    flat = Band(0, 250, RECT_W, 290).warp(photo, np.eye(3))
    aslant = Band(0, 250, RECT_W, 290, slope=0.1).warp(photo, np.eye(3))
    assert flat.shape == aslant.shape == (40, RECT_W)
    dark_rows = (aslant < 128).mean(1)  # the straightened line fills the band's middle rows in every column
    assert dark_rows[12:28].min() > 0.95 and dark_rows[:8].max() < 0.05 and dark_rows[-8:].max() < 0.05
    assert (flat < 128).mean(1)[12:28].min() < 0.5  # a level band cuts across it
    assert np.array_equal(Band(10, 250, 600, 290).warp(photo, np.eye(3)), Band(10, 250, 600, 290).cut(photo))


def test_the_locator_heat_gives_a_tilted_line_its_slope_and_its_own_height():
    from engine.location import line_box, line_slope

    heat = np.zeros((54, 86), np.float32)  # cells of 856/86 x 10 px
    for col in range(10, 76):
        centre = 27 + 0.08 * (col - 43)  # rows per column: 0.08 * 10 / (856 / 86) px per px
        heat[int(round(centre)) - 2 : int(round(centre)) + 2, col] = 0.9
    box = line_box(heat, 0.5)
    slope, height = line_slope(heat, 0.5, box)
    assert abs(slope - 0.08 * 10 / (RECT_W / 86)) < 0.01
    assert abs(height - 40.0) < 1e-6 and height < box[3] - box[1]


def _probs(text: str) -> np.ndarray:
    rows = []
    for ch in text:
        col = np.full(len(CARD_ALPHABET) + 1, 1e-4)
        col[CARD_ALPHABET.index(ch) + 1 if ch != "_" else 0] = 1.0
        rows += [col / col.sum(), np.eye(len(CARD_ALPHABET) + 1)[0]]
    return np.array(rows)


def test_a_date_label_says_which_date_it_is():
    assert [(d.text, d.kind) for d in read_dates(_probs("VALID THRU 12/26"), CARD_ALPHABET, 0.8)] == [("12/26", "expiry")]
    assert [(d.text, d.kind) for d in read_dates(_probs("VALID FROM 01/20"), CARD_ALPHABET, 0.8)] == [("01/20", "issue")]
    both = read_dates(_probs("01/20 08/25"), CARD_ALPHABET, 0.8)
    assert [(d.text, d.kind) for d in both] == [("01/20", "issue"), ("08/25", "expiry")]
    assert pick(read_dates(_probs("VALID FROM 01/20"), CARD_ALPHABET, 0.8), "expiry") is None  # no expiry invented


def test_dates_that_are_no_mm_yy_are_not_read():
    assert read_dates(_probs("2008/04"), CARD_ALPHABET, 0.8) == []  # year first
    assert read_dates(_probs("13/25"), CARD_ALPHABET, 0.8) == []  # no month 13
    assert [d.text for d in read_dates(_probs("05/2022"), CARD_ALPHABET, 0.8)] == ["05/22"]


def test_what_lies_left_of_a_date_gives_its_label_or_shows_a_year_written_first():
    tight = read_dates(_probs("08/04"), CARD_ALPHABET, 0.8)
    assert [d.kind for d in tight] == [None]
    assert in_context(tight, _probs("20"), CARD_ALPHABET) == []  # 2008/04, its century cut off
    assert in_context(tight, _probs("200"), CARD_ALPHABET) == []  # and a digit the box missed
    assert [(d.text, d.kind) for d in in_context(tight, _probs("VALID FROM"), CARD_ALPHABET)] == [("08/04", "issue")]
    assert [(d.text, d.kind) for d in in_context(tight, _probs("GOOD THRU 0"), CARD_ALPHABET)] == [("08/04", "expiry")]
    assert [d.kind for d in in_context(tight, _probs("01/20"), CARD_ALPHABET)] == [None]  # a date before it is no century
    assert [d.kind for d in in_context(tight, _probs("6236"), CARD_ALPHABET)] == [None]  # nor is other print


def _soft(columns: list[tuple[str, float, str]]) -> np.ndarray:
    """Per character: (the character, its probability, the runner-up that takes the rest), each
    followed by a blank column; "_" is blank."""
    rows = []
    for ch, p, other in columns:
        col = np.full(len(CARD_ALPHABET) + 1, 1e-6)
        col[CARD_ALPHABET.index(ch) + 1 if ch != "_" else 0] = p
        col[CARD_ALPHABET.index(other) + 1 if other != "_" else 0] += 1 - p
        rows += [col / col.sum(), np.eye(len(CARD_ALPHABET) + 1)[0]]
    return np.array(rows)


def _sure(text: str) -> list[tuple[str, float, str]]:
    return [(c, 1.0, "_") for c in text]


def test_a_date_the_best_path_misses_is_spotted_only_when_the_band_allows_it():
    def spotted(cols):
        assert read_dates(_soft(cols), CARD_ALPHABET, 0.8, 0.0) == []  # the best path spells no date
        return [d.text for d in read_dates(_soft(cols), CARD_ALPHABET, 0.8, 0.05)]

    assert spotted([("4", 0.6, "_")] + _sure("03/37")) == ["03/37"]  # a weak stray glyph beside it
    assert spotted(_sure("05") + [("7", 0.7, "/")] + _sure("18")) == ["05/18"]  # a faint '/'
    assert spotted(_sure("1") + [("3", 0.6, "1")] + _sure("/27")) == ["11/27"]  # no month 13: the runner-up
    assert spotted(_sure("2008/04")) == []  # a digit read surely beside 08/04: a year written first
    assert spotted(_sure("0411")) == []  # no '/' anywhere: too costly to spell one
    assert spotted(_sure("05") + [("7", 0.97, "/")] + _sure("18")) == []  # a '/' the band does not show


def test_weak_digits_left_of_a_date_are_no_century():
    tight = read_dates(_probs("08/04"), CARD_ALPHABET, 0.8)
    assert [d.kind for d in in_context(tight, _soft([(c, 0.4, "_") for c in "201"]), CARD_ALPHABET, 0.8)] == [None]  # a label read as noise
    assert in_context(tight, _soft(_sure("201")), CARD_ALPHABET, 0.8) == []
