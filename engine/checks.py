"""Image quality and fraud/quality warnings, each a plain measurable function.

Thresholds are data (THRESHOLDS) set from the evaluation sets built by
`python -m engine.eval_warnings` (see its docstring); change them there, with figures.
"""
from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np

from engine.types import (
    WARN_BORDER_INCOMPLETE,
    WARN_INVALID_DATE,
    WARN_PHOTOCOPY,
    WARN_REFLECTION,
    WARN_RESHOOT,
    ReadOptions,
    TextField,
)

THRESHOLDS = {
    "quality_scale": 120.0,  # Laplacian variance that maps to quality ~63
    "border_margin": 0.004,  # corners closer than this fraction of the side to the edge are cut
    "reflection_area": 0.012,  # fraction of the card in saturated, colourless blobs
    "photocopy_colourfulness": 9.0,  # Hasler-Suesstrunk colourfulness below this: grey copy
    "reshoot_peak": 9.0,  # strength of periodic spectral peaks (moire / pixel grid)
    "max_years_ahead": 30,
}


def quality(card: np.ndarray) -> int:
    """0..100 sharpness of the rectified card (variance of the Laplacian, saturating)."""
    gray = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY)
    var = cv2.Laplacian(gray, cv2.CV_32F).var()
    return int(round(100 * (1 - np.exp(-var / THRESHOLDS["quality_scale"]))))


def border_incomplete(quad: np.ndarray, image_size: tuple[int, int], is_frame: bool) -> bool:
    """A card corner lies outside the photo or on its edge (cut off or occluded)."""
    if is_frame:
        return False  # a tight crop of the whole card: its edge is the photo's edge
    w, h = image_size
    mx, my = THRESHOLDS["border_margin"] * w, THRESHOLDS["border_margin"] * h
    q = np.asarray(quad)
    return bool(((q[:, 0] < mx) | (q[:, 0] > w - 1 - mx) | (q[:, 1] < my) | (q[:, 1] > h - 1 - my)).any())


def reflection(card: np.ndarray) -> bool:
    """Specular glare: bright, colourless blobs of some size on the card."""
    hsv = cv2.cvtColor(card, cv2.COLOR_BGR2HSV)
    glare = ((hsv[..., 2] >= 245) & (hsv[..., 1] <= 40)).astype(np.uint8)
    glare = cv2.morphologyEx(glare, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return bool(glare.mean() > THRESHOLDS["reflection_area"])


def colourfulness(card: np.ndarray) -> float:
    b, g, r = [c.astype(np.float32) for c in cv2.split(card)]
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def photocopy(card: np.ndarray) -> bool:
    """A grey or toner copy: almost no colour left on the card."""
    return colourfulness(card) < THRESHOLDS["photocopy_colourfulness"]


def reshoot_score(card: np.ndarray) -> float:
    """How strongly the card's spectrum has isolated periodic peaks (screen pixel grid, moire)."""
    gray = cv2.cvtColor(cv2.resize(card, (512, 320)), cv2.COLOR_BGR2GRAY).astype(np.float32)
    gray -= cv2.GaussianBlur(gray, (0, 0), 3)  # keep fine texture only
    spec = np.abs(np.fft.rfft2(gray * np.outer(np.hanning(320), np.hanning(512))))
    spec[:12, :12] = 0
    spec[-12:, :12] = 0
    logs = np.log1p(spec)
    background = cv2.medianBlur(logs.astype(np.float32), 5)
    excess = logs - background
    return float(np.sort(excess.ravel())[-20:].mean() / (excess.std() + 1e-6))


def reshoot(card: np.ndarray) -> bool:
    return reshoot_score(card) > THRESHOLDS["reshoot_peak"]


def invalid_date(expiry: TextField | None, now: datetime) -> bool:
    """Expired or implausible expiry. No expiry read: nothing to judge."""
    if expiry is None:
        return False
    mm, yy = expiry.text.split("/")
    month, year = int(mm), 2000 + int(yy)
    if not 1 <= month <= 12:
        return True
    if (year, month) < (now.year, now.month):
        return True
    return year > now.year + THRESHOLDS["max_years_ahead"]


def run(img: np.ndarray, quad: np.ndarray, card: np.ndarray, options: ReadOptions, *, expiry: TextField | None, now: datetime, is_frame: bool = False):
    """Warnings asked for by `options` (invalid date always), and the quality value."""
    warnings = []
    if invalid_date(expiry, now):
        warnings.append(WARN_INVALID_DATE)
    if options.check_border and border_incomplete(quad, (img.shape[1], img.shape[0]), is_frame):
        warnings.append(WARN_BORDER_INCOMPLETE)
    if options.check_reflection and reflection(card):
        warnings.append(WARN_REFLECTION)
    if options.check_copy and photocopy(card):
        warnings.append(WARN_PHOTOCOPY)
    if options.check_reshoot and reshoot(card):
        warnings.append(WARN_RESHOOT)
    return warnings, quality(card)
