"""Corner ordering under rotation, quad fitting from masks, rectification geometry."""
import cv2
import numpy as np
import pytest

from engine.geometry import RECT_H, RECT_W, landscape_order, map_points, order_clockwise, quad_from_mask, rectify, rotate_order


def card_corners(angle_deg: float, cx=400.0, cy=300.0, w=300.0, h=189.0) -> np.ndarray:
    """Corners of a card turned by angle, in card order: left_top, right_top, right_bottom, left_bottom."""
    base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (base @ rot.T + [cx, cy]).astype(np.float32)


@pytest.mark.parametrize("angle", [0, 17, 45, 89, 90, 135, 180, 225, 270, 300, 359])
def test_landscape_order_is_a_rotation_of_the_card_order(angle):
    truth = card_corners(angle)
    shuffled = truth[np.random.default_rng(angle).permutation(4)]
    q = landscape_order(shuffled)
    # the result starts on a long side and is the card order up to a half turn
    assert np.linalg.norm(q[1] - q[0]) > np.linalg.norm(q[2] - q[1])
    assert any(np.allclose(rotate_order(q, k), truth, atol=1e-3) for k in (0, 1))


def test_order_clockwise_on_screen():
    q = order_clockwise(np.float32([[10, 10], [0, 100], [100, 0], [110, 110]]))
    assert q[0].tolist() == [10, 10]
    # clockwise with y down: the cross product of consecutive edges is positive
    for k in range(4):
        a, b, c = q[k], q[(k + 1) % 4], q[(k + 2) % 4]
        assert np.cross(b - a, c - b) > 0


@pytest.mark.parametrize("angle", [0, 30, 90, 160, 250])
def test_quad_from_mask_recovers_corners_of_a_rounded_card(angle):
    truth = card_corners(angle, cx=96, cy=96, w=120, h=76)
    mask = np.zeros((192, 192), np.uint8)
    cv2.fillPoly(mask, [np.round(truth * 4).astype(np.int32)], 1, shift=2)
    for p in truth:  # round the corners off like a real card
        cv2.circle(mask, (int(p[0]), int(p[1])), 4, 0, -1)
    q = quad_from_mask(mask)
    assert q is not None
    q = landscape_order(q)
    err = min(np.abs(rotate_order(q, k) - truth).max() for k in (0, 1))
    assert err < 2.0


def test_quad_from_empty_or_tiny_mask_is_none():
    assert quad_from_mask(np.zeros((96, 96), np.uint8)) is None
    tiny = np.zeros((96, 96), np.uint8)
    tiny[10:13, 10:13] = 1
    assert quad_from_mask(tiny) is None


def test_rectify_maps_card_corners_to_the_id1_frame_and_back():
    img = np.zeros((600, 800, 3), np.uint8)
    truth = card_corners(33)
    cv2.fillPoly(img, [truth.astype(np.int32)], (255, 255, 255))
    card, H = rectify(img, truth)
    assert card.shape == (RECT_H, RECT_W, 3)
    assert abs(RECT_W / RECT_H - 85.60 / 53.98) < 0.01
    assert card[RECT_H // 2, RECT_W // 2].min() == 255  # inside the card
    back = map_points(H, [[0, 0], [RECT_W, 0], [RECT_W, RECT_H], [0, RECT_H]])
    assert np.abs(back - truth).max() < 0.5


def test_date_crop_is_scaled_to_the_number_line_and_centred_on_the_date():
    from engine.pipeline import _crop_date

    card = np.zeros((540, 856, 3), np.uint8)
    date_box = (400.0, 380.0, 500.0, 400.0)  # a short, low blob: centre y 390
    crop, (x0, y0, x1, y1) = _crop_date(card, date_box, line_height=60.0, height=0.5, shift=0.0, pad_left=1.0, pad_right=0.5)
    assert (y1 - y0) == 30 and abs((y0 + y1) / 2 - 390) <= 1  # half the number line, on the date
    assert x0 == 370 and x1 == 515  # padded by crop heights: 30 left, 15 right
    assert crop.shape[:2] == (y1 - y0, x1 - x0)
    _, (_, y0s, _, y1s) = _crop_date(card, date_box, 60.0, 0.5, 0.2, 1.0, 0.5)
    assert y0s == y0 + 6 and y1s == y1 + 6  # shifted down by a fifth of its height
    _, (x0e, y0e, x1e, y1e) = _crop_date(card, (10.0, 520.0, 850.0, 539.0), 60.0, 1.0, 0.0, 2.0, 2.0)
    assert (x0e, x1e, y1e) == (0, 856, 540)  # clipped to the card


def test_text_band_finds_the_number_in_a_box_two_lines_tall():
    """A located box spanning the number and a stamp plus small print below it (as on real cards
    whose locator heat runs into the next line) narrows to the number's own rows."""
    from engine.pipeline import _text_band

    card = np.full((540, 856, 3), 200, np.uint8)
    cv2.putText(card, "6228 4803 3034 6440 515", (40, 300), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3)  # digits ~ y 270-300
    cv2.putText(card, "2006/09", (200, 350), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1)
    cv2.rectangle(card, (40, 320), (120, 390), (20, 20, 20), 4)  # a stamp at the left end
    x0, y0, x1, y1 = _text_band(card, (30.0, 260.0, 820.0, 380.0))
    assert (x0, x1) == (30, 820)  # the band keeps the line's ends
    assert 255 <= y0 <= 275 and 295 <= y1 <= 312, (y0, y1)
    # a box already tight on the line stays about the same
    assert abs(_text_band(card, (30.0, 265.0, 820.0, 305.0))[1] - 270) <= 8
