"""Image quality and fraud/quality warnings, each a plain measurable function.

All card-level checks take the rectified card (BGR, 856 x 540, see
engine.geometry.rectify); the border check takes the card's outline in the
original photo. Thresholds are data (THRESHOLDS), calibrated on the sets that
`python -m engine.eval_warnings --seed 1` builds and reported on `--seed 2`
(see that module's docstring for the figures); change them there, with figures.
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
    # quality: edge sharpness ratio (see sharpness) mapped through a logistic curve
    "quality_mid": 0.46,  # sharpness that scores 50: between real photos and sigma-2.5 blur
    "quality_width": 0.08,
    "blur_floor": 0,  # quality below this -> ImageBlurredError; 0 = off (suggested: 30)
    "border_margin": 0.004,  # corners closer than this fraction of the side to the edge are cut
    "glare_level": 245,  # all channels at or above this: clipped highlight
    "glare_min_blob": 0.003,  # highlights smaller than this fraction of the card are glints, not glare
    "glare_ring": 225,  # mean grey just around a highlight: glare has a bright halo, print a dark edge
    "glare_falloff": 0.5,  # share of the halo's brightness kept 4-10 px out: glare fades, print steps
    "reflection_area": 0.006,  # fraction of the card under glare blobs
    "photocopy_chroma": 9.0,  # spread of colour (a cast does not count) below this: grey copy
    "reshoot_peak": 1.0,  # log rise of the strongest isolated fine peaks above their surroundings
    "reshoot_min_freq": 0.24,  # cycles per pixel at 512 px: periods under ~7 px at 856, above the 8-px JPEG block grid
    "max_years_ahead": 30,
}


# ------------------------------------------------------------------ quality


def sharpness(card: np.ndarray) -> float:
    """Edge sharpness, ~1/edge width: RMS Laplacian over RMS gradient around strong edges.

    A ratio, so it does not depend on contrast or on how much text the card
    has (the variance of the Laplacian does). A light pre-blur and a
    noise-aware edge threshold keep sensor noise and JPEG from passing for detail.
    """
    g = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY).astype(np.float32)
    noise = np.median(np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=1))) / 0.6745 / np.sqrt(20)
    g = cv2.GaussianBlur(g, (0, 0), 1.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8
    gm = np.hypot(gx, gy)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1)
    thr = max(float(np.percentile(gm, 90)), 3.0 * noise, 2.0)
    edges = cv2.dilate((gm >= thr).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if not edges.any():
        return 0.0
    return float(np.sqrt((lap[edges] ** 2).mean() / ((gm[edges] ** 2).mean() + 1e-6)))


def quality(card: np.ndarray) -> int:
    """0..100 sharpness of the rectified card; 50 is the vendors' recommended threshold."""
    s = sharpness(card)
    z = (s - THRESHOLDS["quality_mid"]) / THRESHOLDS["quality_width"]
    return int(round(100 / (1 + np.exp(-z))))


def blurred(card: np.ndarray, floor: int | None = None) -> bool:
    """Too blurred to trust: quality below `floor` (THRESHOLDS['blur_floor'] when None; 0 = never)."""
    floor = THRESHOLDS["blur_floor"] if floor is None else floor
    return floor > 0 and quality(card) < floor


# ------------------------------------------------------------------ border


def border_incomplete(quad: np.ndarray, image_size: tuple[int, int], is_frame: bool) -> bool:
    """A card corner lies outside the photo or on its edge (cut off).

    A quad fitted to a mask clipped by the photo's edge has corners on that
    edge (or beyond it, where the fitted sides meet outside).
    """
    if is_frame:
        return False  # a tight crop of the whole card: its edge is the photo's edge
    w, h = image_size
    mx, my = THRESHOLDS["border_margin"] * w, THRESHOLDS["border_margin"] * h
    q = np.asarray(quad, np.float32).reshape(-1, 2)
    return bool(((q[:, 0] < mx) | (q[:, 0] > w - 1 - mx) | (q[:, 1] < my) | (q[:, 1] > h - 1 - my)).any())


# ------------------------------------------------------------------ reflection


def glare_area(card: np.ndarray) -> float:
    """Fraction of the card under specular highlights.

    A highlight is a clipped, colourless blob whose surroundings are bright
    and fade gradually outward (a halo). Printed white areas (white cards,
    logos, holograms) are clipped too, but end in a step to darker print.
    """
    t = THRESHOLDS
    hsv = cv2.cvtColor(card, cv2.COLOR_BGR2HSV)
    clipped = ((card.min(axis=2) >= t["glare_level"]) & (hsv[..., 1] <= 40)).astype(np.uint8)
    clipped = cv2.morphologyEx(clipped, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(clipped)
    if n <= 1:
        return 0.0
    grey = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY).astype(np.float32)
    min_px = t["glare_min_blob"] * card.shape[0] * card.shape[1]
    area = 0
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < min_px:
            continue
        x, y, w, h = stats[i, :4]
        pad = 42  # look only near the blob: rings out to 40 px
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(card.shape[1], x + w + pad), min(card.shape[0], y + h + pad)
        blob = (labels[y0:y1, x0:x1] == i).astype(np.uint8)
        dist = cv2.distanceTransform(1 - blob, cv2.DIST_L2, 5)
        g = grey[y0:y1, x0:x1]
        rings = []
        for a, b in ((0, 4), (4, 10), (10, 20), (20, 40)):
            sel = (dist > a) & (dist <= b)
            rings.append(float(g[sel].mean()) if sel.any() else 0.0)
        near, mid, outer, far = rings
        fades = near - mid >= 2 and mid - outer >= 2 and outer - far >= 2  # a halo darkens outward all the way
        falloff = (mid - far) / max(near - far, 1e-3)
        if near >= t["glare_ring"] and fades and falloff >= t["glare_falloff"]:
            area += stats[i, cv2.CC_STAT_AREA]
    return area / (card.shape[0] * card.shape[1])


def reflection(card: np.ndarray) -> bool:
    """Glare or specular highlights over the card."""
    return glare_area(card) > THRESHOLDS["reflection_area"]


# ------------------------------------------------------------------ photocopy


def colourfulness(card: np.ndarray) -> float:
    """Hasler-Suesstrunk colourfulness (kept for reference and reports)."""
    b, g, r = [c.astype(np.float32) for c in cv2.split(card)]
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def chroma_spread(card: np.ndarray) -> float:
    """How much colour varies over the card: the spread of the opponent channels.

    Unlike colourfulness it leaves out their mean, so a grey copy photographed
    under warm light (a uniform cast) still reads as grey. The 99th percentile
    of the distance from the median chroma keeps small coloured logos in.
    """
    b, g, r = [c.astype(np.float32) for c in cv2.split(cv2.resize(card, (428, 270), interpolation=cv2.INTER_AREA))]
    rg, yb = r - g, 0.5 * (r + g) - b
    d = np.hypot(rg - np.median(rg), yb - np.median(yb))
    return float(0.5 * np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.5 * np.percentile(d, 99) / 3)


def photocopy(card: np.ndarray) -> bool:
    """A grey or toner copy: almost no colour variation left on the card."""
    return chroma_spread(card) < THRESHOLDS["photocopy_chroma"]


# ------------------------------------------------------------------ re-shoot


_NOISE_FLOOR = np.random.default_rng(0).normal(0, 2.0, (320, 512)).astype(np.float32)
_PEAK_RING = (lambda r: ((r >= 3) & (r <= 6)).astype(np.uint8))(np.hypot(*np.mgrid[-6:7, -6:7]))


def reshoot_score(card: np.ndarray) -> float:
    """How far isolated periodic peaks (screen pixel grid, moire, halftone dots) rise in the card's spectrum.

    Each frequency's log magnitude is compared with the highest value on a
    ring 3-6 bins around it: a point-like peak rises above its whole ring,
    while the ridges that straight edges and lines leave in a spectrum run
    through the ring and cancel. Only fine periods count (THRESHOLDS
    'reshoot_min_freq'): a screen's pixels and a halftone's dots are a few
    pixels apart, printed designs are coarser. The score is the mean rise of
    the 5 highest peaks, in natural-log units.
    """
    gray = cv2.cvtColor(cv2.resize(card, (512, 320), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY).astype(np.float32)
    gray -= cv2.GaussianBlur(gray, (0, 0), 3)  # keep fine texture only
    # A fixed noise floor, as a camera sensor gives: without it the 8-bit steps of a
    # smooth gradient on a clean render are themselves a fine periodic pattern.
    gray += _NOISE_FLOOR
    spec = np.abs(np.fft.rfft2(gray * np.outer(np.hanning(320), np.hanning(512)).astype(np.float32)))
    logs = np.fft.fftshift(np.log1p(spec).astype(np.float32), axes=0)  # contiguous rows for the ring
    rise = np.fft.ifftshift(logs - cv2.dilate(logs, _PEAK_RING, borderType=cv2.BORDER_REFLECT), axes=0)
    fy = np.fft.fftfreq(320)[:, None]
    fx = np.fft.rfftfreq(512)[None, :]
    band = rise[np.hypot(fx, fy) >= THRESHOLDS["reshoot_min_freq"]]
    return float(np.sort(band)[-5:].mean())


def reshoot(card: np.ndarray) -> bool:
    return reshoot_score(card) > THRESHOLDS["reshoot_peak"]


# ------------------------------------------------------------------ dates


def invalid_date(expiry: TextField | None, now: datetime) -> bool:
    """Expired, malformed or implausibly far ahead. No expiry read: nothing to judge.

    A card is valid through the last day of its expiry month.
    """
    if expiry is None:
        return False
    try:
        mm, yy = expiry.text.split("/")
        month, year = int(mm), int(yy)
    except ValueError:
        return True
    year += 2000 if year < 100 else 0
    if not 1 <= month <= 12:
        return True
    if (year, month) < (now.year, now.month):
        return True
    return year > now.year + THRESHOLDS["max_years_ahead"]


# ------------------------------------------------------------------ all


def run(img: np.ndarray, quad: np.ndarray, card: np.ndarray, options: ReadOptions, *, expiry: TextField | None, now: datetime, is_frame: bool = False):
    """Warnings asked for by `options` (invalid date always), and the quality value (None unless asked for)."""
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
    wants_quality = options.want_quality or options.blur_floor > 0
    return warnings, (quality(card) if wants_quality else None)
