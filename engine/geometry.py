"""Card geometry: mask -> quadrilateral, corner ordering, perspective rectification."""
from __future__ import annotations

import cv2
import numpy as np

# ID-1: 85.60 x 53.98 mm. The rectified card is 10 px per mm.
RECT_W, RECT_H = 856, 540


def order_clockwise(pts: np.ndarray) -> np.ndarray:
    """Four points -> clockwise from the top-left-most in image coordinates."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    c = pts.mean(0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # clockwise on screen (y down)
    start = np.argmin(pts.sum(1))
    return np.roll(pts, -start, axis=0)


def landscape_order(pts: np.ndarray) -> np.ndarray:
    """Clockwise quad whose first edge is a long side: rectifying it gives a landscape card."""
    q = order_clockwise(pts)
    if np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[3] - q[2]) < np.linalg.norm(q[2] - q[1]) + np.linalg.norm(q[0] - q[3]):
        q = np.roll(q, -1, axis=0)
    return q


def rotate_order(q: np.ndarray, half_turns: int) -> np.ndarray:
    """The same outline read from the opposite corner: the card turned by 180 degrees per half turn."""
    return np.roll(q, -2 * half_turns, axis=0)


def _intersect(l1, l2):
    (vx1, vy1, x1, y1), (vx2, vy2, x2, y2) = l1, l2
    a = np.array([[vx1, -vx2], [vy1, -vy2]], np.float64)
    if abs(np.linalg.det(a)) < 1e-9:
        return None
    t = np.linalg.solve(a, np.array([x2 - x1, y2 - y1], np.float64))
    return np.array([x1 + t[0] * vx1, y1 + t[0] * vy1], np.float32)


def quad_from_mask(mask: np.ndarray, min_area_frac: float = 0.03) -> np.ndarray | None:
    """Largest blob of a binary mask -> 4 corners (clockwise), or None.

    Card corners are rounded, so corners from polygon simplification sit
    inside the true ones: fit a line to each side's contour points and
    intersect neighbours instead.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    cnt = max(contours, key=cv2.contourArea)
    if cv2.contourArea(cnt) < min_area_frac * mask.shape[0] * mask.shape[1]:
        return None
    hull = cv2.convexHull(cnt)
    peri = cv2.arcLength(hull, True)
    approx = None
    for eps in (0.02, 0.03, 0.05, 0.08):
        a = cv2.approxPolyDP(hull, eps * peri, True)
        if len(a) == 4:
            approx = a.reshape(4, 2).astype(np.float32)
            break
    if approx is None:
        return order_clockwise(cv2.boxPoints(cv2.minAreaRect(cnt)))
    rough = order_clockwise(approx)
    pts = cnt.reshape(-1, 2).astype(np.float32)
    lines = []
    for k in range(4):
        p, q = rough[k], rough[(k + 1) % 4]
        d = q - p
        length = np.linalg.norm(d) + 1e-6
        n = np.array([-d[1], d[0]]) / length
        t = ((pts - p) @ d) / (length * length)
        dist = np.abs((pts - p) @ n)
        near = pts[(t > 0.15) & (t < 0.85) & (dist < max(2.0, 0.03 * length))]
        if len(near) < 5:
            return rough
        lines.append(cv2.fitLine(near, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel())
    corners = [_intersect(lines[k - 1], lines[k]) for k in range(4)]
    if any(c is None for c in corners):
        return rough
    refined = np.array(corners, np.float32)
    # guard against a wild intersection (near-parallel fitted lines)
    if np.abs(refined - rough).max() > 0.15 * max(mask.shape):
        return rough
    return order_clockwise(refined)


def rectify(img: np.ndarray, quad: np.ndarray, size=(RECT_W, RECT_H)) -> tuple[np.ndarray, np.ndarray]:
    """Warp the card to size; return (card image, 3x3 homography card->image)."""
    w, h = size
    dst = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    M = cv2.getPerspectiveTransform(np.asarray(quad, np.float32), dst)
    card = cv2.warpPerspective(img, M, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return card, np.linalg.inv(M)


def map_points(H: np.ndarray, pts) -> np.ndarray:
    pts = np.asarray(pts, np.float32).reshape(1, -1, 2)
    return cv2.perspectiveTransform(pts, H)[0]
