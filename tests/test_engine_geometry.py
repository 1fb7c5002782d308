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
