"""Text lines found from the pixels alone: the engine's fallback when its locator sees no number."""
import numpy as np
import pytest

from engine.textlines import text_lines

pytest.importorskip("PIL")  # the synthetic renderer draws with Pillow


@pytest.mark.parametrize("seed", range(6))
def test_the_number_line_is_one_of_the_two_densest_lines(seed):
    from engine.synth.card import render_card

    card = render_card(np.random.default_rng(seed), number="6217000010030385457", layout="44443", embossed=False)
    x0, y0, x1, y1 = card.number.box
    found = text_lines(card.image)[:2]
    # the number's own box, give or take: vertically within half its height, across most of it
    overlaps = [b for b in found if abs((b[1] + b[3]) / 2 - (y0 + y1) / 2) < (y1 - y0) / 2 and min(b[2], x1) - max(b[0], x0) > 0.7 * (x1 - x0)]
    assert overlaps, (card.number.box, found)


def test_a_blank_card_has_no_text_lines():
    assert text_lines(np.full((540, 856, 3), 200, np.uint8)) == []


def test_a_date_box_pulled_up_and_short_of_the_first_digits_finds_the_date_line():
    """The locator's date box often sits on a MONTH/YEAR head above the date, or misses the first
    digits: the line the engine reads instead is the date itself, on most cards (about 85% of
    synthetic cards here, with or without the optional Debian fonts and art). Where it finds a
    line, the engine still needs three agreeing reads of it."""
    from engine.pipeline import _date_line
    from engine.synth.card import render_card

    found_right = dated = 0
    for seed in range(60):
        card = render_card(np.random.default_rng(seed), number="6217000010030385457", layout="44443", embossed=seed % 3 == 0)
        if card.expiry is None:
            continue
        dated += 1
        x0, y0, x1, y1 = card.expiry.box
        h = y1 - y0
        located = (x0 + 0.5 * (x1 - x0), y0 - 0.8 * h, x1, y1 - 0.8 * h)  # up by most of its height, right half only
        found = _date_line(card.image, located, line_height=card.number.box[3] - card.number.box[1])
        if found is not None:
            covered = max(0, min(found[2], x1) - max(found[0], x0)) / (x1 - x0)
            found_right += covered > 0.8 and abs((found[1] + found[3]) / 2 - (y0 + y1) / 2) < h / 2
    assert dated >= 30 and found_right >= 0.7 * dated, (found_right, dated)
