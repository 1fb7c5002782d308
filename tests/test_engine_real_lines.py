"""The locator's real training samples (engine/train/real_lines.py) and the loss that leaves their
unlabelled date channels out (engine/train/common.dice_bce)."""
import numpy as np
import pytest
import torch

from engine.geometry import RECT_H, RECT_W
from engine.models import LOC_CHANNELS, LOC_H, LOC_W
from engine.train.common import dice_bce
from engine.train.real_lines import BOX_HEIGHT_SHARE, RealView, _fits, real_sample


def _view(box_rows=(300, 360), box_cols=(120, 700)) -> RealView:
    """A photo that is the card itself (856 x 540), its number line boxed."""
    photo = np.full((RECT_H, RECT_W, 3), 200, np.uint8)
    (y0, y1), (x0, x1) = box_rows, box_cols
    photo[y0:y1, x0:x1] = 20
    quad = np.float32([[0, 0], [RECT_W, 0], [RECT_W, RECT_H], [0, RECT_H]])
    return RealView("card.jpg", photo, quad, np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))


def test_the_number_channel_covers_the_squeezed_box_and_dates_are_unknown():
    view = _view()
    img, target = real_sample(np.random.default_rng(0), view, flip_share=0.0, corner_error=0.0)
    assert img.shape == (3, LOC_H, LOC_W)
    number = target[LOC_CHANNELS.index("number")]
    rows = np.flatnonzero(number.max(1) > 0.5) * 2 * RECT_H / LOC_H  # heat cells -> card rows
    cols = np.flatnonzero(number.max(0) > 0.5) * 2 * RECT_W / LOC_W
    middle, half = 330, 30 * BOX_HEIGHT_SHARE
    assert middle - half - 10 <= rows.min() and rows.max() <= middle + half + 10
    assert abs(cols.min() - 120) < 12 and abs(cols.max() - 700) < 12
    for name in ("expiry", "issue"):
        assert (target[LOC_CHANNELS.index(name)] == -1).all()


def test_an_upside_down_sample_has_every_channel_empty():
    img, target = real_sample(np.random.default_rng(0), _view(), flip_share=1.0, corner_error=0.0)
    upright, _ = real_sample(np.random.default_rng(0), _view(), flip_share=0.0, corner_error=0.0)
    assert (target == 0).all()
    assert np.allclose(img, upright[:, ::-1, ::-1], atol=1e-6)


def test_a_box_fits_a_view_only_as_a_level_line_read_left_to_right():
    view = _view()
    assert _fits(view.quad, view.box)
    half_turn = np.roll(view.quad, 2, axis=0)
    assert not _fits(half_turn, view.box)  # the box's left end would be on the right
    tall = np.float32([[100, 100], [200, 100], [200, 300], [100, 300]])
    assert not _fits(view.quad, tall)
    outside = view.box + [0, 400]
    assert not _fits(view.quad, outside)


def test_the_loss_leaves_unknown_channels_out():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = (torch.rand(2, 3, 8, 8) > 0.7).float()
    unknown = target.clone()
    unknown[:, 1:] = -1
    assert dice_bce(logits, unknown).item() == pytest.approx(dice_bce(logits[:, :1], target[:, :1]).item(), rel=1e-5)
    # Fully labelled, it is BCE over every pixel plus the mean dice of every channel.
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    p = logits.sigmoid()
    dice = 1 - (2 * (p * target).sum((2, 3)) + 1) / (p.sum((2, 3)) + target.sum((2, 3)) + 1)
    assert dice_bce(logits, target).item() == pytest.approx((bce + dice.mean()).item(), rel=1e-5)


def _rect(x0, y0, x1, y1):
    return np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def test_dates_seen_label_their_channels_and_leave_an_unknown_kind_out():
    view = _view()
    view.dates = [("expiry", _rect(500, 400, 620, 440)), (None, _rect(200, 400, 320, 440))]
    _, target = real_sample(np.random.default_rng(0), view, flip_share=0.0, corner_error=0.0)
    expiry, issue = target[LOC_CHANNELS.index("expiry")], target[LOC_CHANNELS.index("issue")]
    cell = lambda x, y: (int(y * LOC_H / RECT_H / 2), int(x * LOC_W / RECT_W / 2))  # card px -> heat cell
    assert expiry[cell(560, 420)] == 1 and issue[cell(560, 420)] == 0  # an expiry is no issue date
    assert expiry[cell(260, 420)] == -1 and issue[cell(260, 420)] == -1  # a date of no known kind
    assert expiry[cell(430, 100)] == 0 and issue[cell(430, 100)] == 0  # off the dates: no date
