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
