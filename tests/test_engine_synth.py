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


def test_label_boxes_hold_their_labels_ink_left_of_their_date():
    """A date's label lines are recorded where they are printed: each box holds ink, sits left of
    its date (a stacked label's lines one under another), and the label says the date's kind."""
    from engine.dates import EXPIRY_WORDS, ISSUE_WORDS

    seen = 0
    for seed in range(40):
        card = render_card(np.random.default_rng(seed), varied_dates=seed % 2 == 0)
        for kind, lines in card.labels.items():
            date = card.expiry if kind == "expiry" else card.issue
            words = EXPIRY_WORDS if kind == "expiry" else ISSUE_WORDS
            assert date is not None
            for line in lines:
                x0, y0, x1, y1 = line.box
                assert x0 < x1 <= date.box[0] + 2 and y1 > date.box[1] - 2 and y0 < date.box[3] + 2, (seed, line, date)
                ink = card.image[y0:y1, x0:x1].std()
                assert ink > 5, (seed, line)
            joined = " ".join(line.text for line in lines)
            if joined.isascii():
                seen += 1
                assert any(w in joined for w in words), joined
    assert seen >= 15

