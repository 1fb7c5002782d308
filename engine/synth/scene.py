"""Put a rendered card into a photo, and degrade images the way phones do.

`photo_of_card` warps a flat card into a background at any rotation and
returns the photo with the card's four corners, ordered as on the card
(left_top, right_top, right_bottom, left_bottom). `degrade` adds lighting,
glare, shadow, blur, noise and JPEG artefacts.
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.synth.card import _textures


def background_photo(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A table/desk/hand-like background: a texture crop, a flat colour, or clutter."""
    textures = _textures()
    r = rng.random()
    if textures and r < 0.6:
        tex = textures[rng.integers(len(textures))]
        scale = max(w / tex.shape[1], h / tex.shape[0]) * rng.uniform(1.0, 2.0)
        tex = cv2.resize(tex, None, fx=scale, fy=scale)
        y0 = rng.integers(0, tex.shape[0] - h + 1)
        x0 = rng.integers(0, tex.shape[1] - w + 1)
        img = tex[y0 : y0 + h, x0 : x0 + w].copy()
        if rng.random() < 0.5:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1, 6))
    else:
        img = np.empty((h, w, 3), np.uint8)
        img[:] = rng.integers(0, 255, 3)
        for _ in range(rng.integers(0, 12)):  # clutter: papers, pens, other rectangles
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            if rng.random() < 0.5:
                p = rng.integers(0, max(w, h), 4)
                cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), color, int(rng.integers(1, 15)))
            else:
                cx, cy = rng.integers(0, w), rng.integers(0, h)
                box = cv2.boxPoints(((float(cx), float(cy)), (float(rng.integers(20, w)), float(rng.integers(20, h))), float(rng.uniform(0, 90))))
                cv2.fillPoly(img, [box.astype(np.int32)], color)
    return img


def random_quad(rng: np.random.Generator, w: int, h: int, card_aspect: float, angle: float | None = None, scale: float | None = None) -> np.ndarray:
    """Card corners in a w x h photo: any rotation, size from small to filling the frame."""
    mode = rng.random()
    if angle is not None:
        pass
    elif mode < 0.45:
        angle = rng.normal(0, 8)
    elif mode < 0.75:
        angle = rng.choice([90, 180, 270]) + rng.normal(0, 8)
    else:
        angle = rng.uniform(0, 360)
    fill = rng.random() if scale is None else 1.0
    if scale is not None:
        pass
    elif fill < 0.3:  # card fills the frame, corners near or slightly past the edges
        scale = rng.uniform(0.92, 1.08)
    else:
        scale = rng.uniform(0.45, 0.92)
    theta = np.deg2rad(angle)
    c, s = abs(np.cos(theta)), abs(np.sin(theta))
    # largest card of this aspect that fits at this angle, times scale
    cw = min(w / (c + s / card_aspect), h / (s + c / card_aspect)) * scale
    ch = cw / card_aspect
    base = np.array([[-cw / 2, -ch / 2], [cw / 2, -ch / 2], [cw / 2, ch / 2], [-cw / 2, ch / 2]])
    base += rng.normal(0, 0.04, base.shape) * np.array([cw, ch])  # perspective
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    pts = base @ rot.T
    span = pts.max(0) - pts.min(0)
    free = np.maximum(np.array([w, h]) - span, 0)
    centre = np.array([w, h]) / 2 + (rng.uniform(-0.5, 0.5, 2) * free if fill >= 0.3 else rng.normal(0, 0.02, 2) * [w, h])
    return (pts + centre).astype(np.float32)


def photo_of_card(card: np.ndarray, rng: np.random.Generator, size: tuple[int, int] | None = None, angle: float | None = None, scale: float | None = None):
    """Return (photo BGR, quad float32[4,2] ordered as on the card).

    `angle` pins the rotation (degrees); `scale` pins the card's size relative to the largest
    that fits the photo at that angle (below 1: the whole card is in the photo).
    """
    if size is None:
        long_side = int(rng.integers(480, 900))
        aspect = rng.choice([4 / 3, 3 / 2, 16 / 9, 1.0])
        w, h = (long_side, int(long_side / aspect)) if rng.random() < 0.7 else (int(long_side / aspect), long_side)
    else:
        w, h = size
    ch, cw = card.shape[:2]
    quad = random_quad(rng, w, h, cw / ch, angle, scale)
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad)
    bg = background_photo(rng, w, h)
    warped = cv2.warpPerspective(card, M, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ch, cw), 255, np.uint8), M, (w, h))
    if rng.random() < 0.7:  # rounded corners / soft edge
        mask = cv2.GaussianBlur(mask, (3, 3), 0)
    m = (mask.astype(np.float32) / 255.0)[..., None]
    photo = (warped * m + bg * (1 - m)).astype(np.uint8)
    if rng.random() < 0.2:  # a finger or object over part of the card
        cx, cy = quad[rng.integers(4)]
        cv2.ellipse(photo, (int(cx), int(cy)), (int(rng.integers(20, 60)), int(rng.integers(40, 120))), float(rng.uniform(0, 180)), 0, 360, (int(rng.integers(90, 200)), int(rng.integers(110, 190)), int(rng.integers(150, 240))), -1)
    return photo, quad


def degrade(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Phone-camera effects: lighting, colour cast, shadow, glare, blur, noise, JPEG."""
    h, w = img.shape[:2]
    out = img.astype(np.float32)
    out = out * rng.uniform(0.6, 1.3) + rng.uniform(-40, 40) * strength
    out *= rng.uniform(0.85, 1.15, 3)[None, None]
    if rng.random() < 0.4 * strength:  # shadow or light gradient
        g = np.linspace(rng.uniform(0.4, 1.0), rng.uniform(0.9, 1.2), w if rng.random() < 0.5 else h, dtype=np.float32)
        out *= g[None, :, None] if len(g) == w else g[:, None, None]
    if rng.random() < 0.3 * strength:  # glare blob
        cx, cy = rng.integers(0, w), rng.integers(0, h)
        yy, xx = np.ogrid[:h, :w]
        r = rng.uniform(0.05, 0.3) * max(h, w)
        blob = np.exp(-(((xx - cx) ** 2 + ((yy - cy) * rng.uniform(0.3, 3)) ** 2) / (2 * r * r)))
        out += blob[..., None] * rng.uniform(60, 220)
    out = np.clip(out, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < 0.35 * strength:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.8 * strength + 0.2))
    elif r < 0.5 * strength:  # motion blur
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0 / k
        M = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, M, (k, k))
        out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
    if rng.random() < 0.5:
        out = np.clip(out.astype(np.float32) + rng.normal(0, rng.uniform(2, 12) * strength, out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 95))])
        out = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    if rng.random() < 0.15:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return out
