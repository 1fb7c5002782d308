"""The synthetic card renderer's varied date block (training data for the locator)."""
import numpy as np

from engine.synth.card import CARD_H, CARD_W, render_card


def test_varied_date_boxes_hold_the_date_alone():
    dates = 0
    for seed in range(30):
        card = render_card(np.random.default_rng(seed), varied_dates=True)
        for field in (card.expiry, card.issue):
            if field is None:
                continue
            dates += 1
            x0, y0, x1, y1 = field.box
            assert 0 <= x0 < x1 <= CARD_W and 0 <= y0 < y1 <= CARD_H
            # MM/YY is about three to five times as wide as tall; a box that took in the label
            # beside it or the MONTH/YEAR head above it would not be.
            assert 2.0 < (x1 - x0) / (y1 - y0) < 6.0, (seed, field)
            assert card.number.box[3] <= y0  # under the number line
    assert dates >= 20


def test_varied_dates_is_opt_in():
    plain = render_card(np.random.default_rng(3))
    assert np.array_equal(plain.image, render_card(np.random.default_rng(3), varied_dates=False).image)
    assert not np.array_equal(plain.image, render_card(np.random.default_rng(3), varied_dates=True).image)
