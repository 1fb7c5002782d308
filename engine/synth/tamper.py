"""Turn a real or synthetic card into labelled positives for each warning check.

Every function is deterministic given its `rng`. Card-level transforms take the
rectified card (BGR, 856 x 540) and return an image of the same size, as the
checks see it after rectification:

    glare            specular highlight blobs over the card (reflection)
    photocopy        grey or toner copy, re-photographed (photocopy)
    screen_reshoot   the card shown on a screen and photographed (reshoot)
    print_reshoot    the card printed as a halftone and photographed (reshoot)
    mild             harmless phone-camera changes a clean photo may have (negatives)
    blur             Gaussian defocus (quality)

The border check works on the photo and the card's outline instead:
`place_in_photo` puts a card fully inside a photo (a negative) and
`cut_border` crops that photo so a corner or an edge of the card falls
outside it (a positive); both return the quad as the detector would see it.
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.geometry import order_clockwise, quad_from_mask
from engine.synth.scene import background_photo


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)


def _clip(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).astype(np.uint8)


def _camera(img: np.ndarray, rng: np.random.Generator, blur=(0.0, 0.6), noise=(0.0, 3.0), jpeg=(70, 95)) -> np.ndarray:
    """The phone that took the (re)shot: slight defocus, sensor noise, JPEG."""
    out = img
    s = rng.uniform(*blur)
    if s > 0.15:
        out = cv2.GaussianBlur(out, (0, 0), s)
    n = rng.uniform(*noise)
    if n > 0:
        out = _clip(out.astype(np.float32) + rng.normal(0, n, out.shape))
    return _jpeg(out, rng.integers(jpeg[0], jpeg[1] + 1))


# ------------------------------------------------------------------ negatives


def mild(card: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A clean photo changed the way a normal upload is: these must not raise warnings."""
    out = card.astype(np.float32) * rng.uniform(0.9, 1.1) + rng.uniform(-12, 12)
    out = _clip(out)
    r = rng.random()
    if r < 0.4:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.0))
    return _jpeg(out, rng.integers(60, 96))


def blur(card: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(card, (0, 0), sigma)


# ------------------------------------------------------------------ reflection


def glare(card: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-3 elliptical specular highlights: a clipped white core fading into a halo.

    The clipped cores together cover 1-6% of the card (smaller glints are not
    what the warning is for); halos range from soft (a lamp) to fairly sharp
    (a window reflected in the glossy surface).
    """
    h, w = card.shape[:2]
    out = card.astype(np.float32)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    n = int(rng.integers(1, 4))
    total = rng.uniform(0.01, 0.06) * h * w
    for share in rng.dirichlet(np.ones(n) * 2):
        core_area = max(share * total, 0.004 * h * w)
        aspect = rng.uniform(0.3, 1.0)
        core_a = np.sqrt(core_area / (np.pi * aspect))
        strength = rng.uniform(1.5, 3.0)  # >1: the core clips to white
        k = rng.uniform(1.0, 6.0)  # larger: sharper halo
        a = core_a / np.sqrt(np.log(strength) / k)  # alpha reaches 1 at the core's edge
        b = a * aspect
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        t = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)) / a
        v = (-(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)) / b
        alpha = np.clip(strength * np.exp(-(u * u + v * v) * k), 0, 1)[..., None]
        tint = np.float32([255, 255, 255]) - rng.uniform(0, 6, 3)  # glare is (almost) colourless
        out = out * (1 - alpha) + tint * alpha
    return _camera(_clip(out), rng)


# ------------------------------------------------------------------ photocopy


def photocopy(card: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Toner or grey copy on paper, then photographed: no chroma, hard tone curve, speckle."""
    h, w = card.shape[:2]
    g = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    if rng.random() < 0.6:  # copier blur before toner
        g = cv2.GaussianBlur(g, (0, 0), rng.uniform(0.4, 1.2))
    # Copier tone curve: lighter lights, darker darks (a steep sigmoid around mid-grey).
    k = rng.uniform(4, 10)
    mid = rng.uniform(0.4, 0.6)
    g = 1 / (1 + np.exp(-k * (g - mid)))
    # Paper: slightly uneven and textured; toner: dark speckle dots.
    paper = 1 - np.abs(cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), rng.uniform(1, 3))) * rng.uniform(0.02, 0.06)
    g = g * paper
    speckle = rng.random((h, w)) < rng.uniform(0.0005, 0.004)
    g[speckle] *= rng.uniform(0.1, 0.5)
    grey = np.clip(g * rng.uniform(200, 250) + rng.uniform(0, 20), 0, 255)
    out = np.repeat(grey[..., None], 3, axis=2)
    # Photographed under room light: a faint, uniform colour cast and a light gradient.
    out *= (1 + rng.uniform(-0.04, 0.04, 3))[None, None]
    if rng.random() < 0.5:
        ramp = np.linspace(rng.uniform(0.8, 1.0), rng.uniform(0.95, 1.1), w, dtype=np.float32)
        out *= ramp[None, :, None]
    return _camera(_clip(out), rng, noise=(1.0, 4.0))


# ------------------------------------------------------------------ re-shoot


def screen_reshoot(card: np.ndarray, rng: np.random.Generator, bezel: bool | None = None) -> np.ndarray:
    """The card shown on an RGB-stripe screen and photographed.

    The screen's pixel grid appears at a pitch of 2-5 photo pixels at a small
    angle; rendering at 2x and area-downsampling lets the grid interfere with
    the camera's sampling (moire). Then the screen's gamma and brightness.
    """
    h, w = card.shape[:2]
    ss = 2
    pitch = rng.uniform(2.0, 5.0) * ss
    ang = np.deg2rad(rng.normal(0, 4))
    H, W = h * ss, w * ss
    yy, xx = np.mgrid[:H, :W].astype(np.float32)
    u = (xx * np.cos(ang) + yy * np.sin(ang)) / pitch
    v = (-xx * np.sin(ang) + yy * np.cos(ang)) / pitch
    # What the screen displays: the card resampled to its pixel grid (nearest screen pixel).
    iu, iv = np.floor(u) + 0.5, np.floor(v) + 0.5
    sx = (iu * np.cos(ang) - iv * np.sin(ang)) * pitch / ss
    sy = (iu * np.sin(ang) + iv * np.cos(ang)) * pitch / ss
    shown = cv2.remap(card, sx.astype(np.float32), sy.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    # Subpixels: vertical R, G, B stripes in each pixel, a dark gap between rows.
    fu, fv = u - np.floor(u), v - np.floor(v)
    stripe = np.minimum((fu * 3).astype(np.int32), 2)  # 0 R, 1 G, 2 B
    sub = np.zeros((H, W, 3), np.float32)
    for c, bgr in ((0, 2), (1, 1), (2, 0)):
        sub[..., bgr] = stripe == c
    gap = rng.uniform(0.1, 0.25)
    sub *= (fv > gap)[..., None]
    lit = shown * sub * 3.0 / (1 - gap)
    out = cv2.resize(lit, (w, h), interpolation=cv2.INTER_AREA)
    # Screen gamma and brightness, then camera white balance.
    out = 255 * (np.clip(out, 0, 255) / 255) ** rng.uniform(0.8, 1.3) * rng.uniform(0.8, 1.15)
    out *= (1 + rng.uniform(-0.06, 0.06, 3))[None, None]
    if bezel if bezel is not None else rng.random() < 0.3:
        side = int(rng.integers(4))
        t = int(rng.uniform(0.02, 0.06) * (h if side % 2 == 0 else w))
        dark = rng.uniform(5, 30)
        if side == 0:
            out[:t] = dark
        elif side == 1:
            out[:, -t:] = dark
        elif side == 2:
            out[-t:] = dark
        else:
            out[:, :t] = dark
    return _camera(_clip(out), rng, blur=(0.0, 0.5))


def print_reshoot(card: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The card printed as a CMYK halftone (rosette of rotated dot screens), photographed."""
    h, w = card.shape[:2]
    ss = 2
    big = cv2.resize(card, (w * ss, h * ss), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    H, W = big.shape[:2]
    b, g, r = big[..., 0], big[..., 1], big[..., 2]
    k = 1 - np.maximum(np.maximum(r, g), b)
    den = np.maximum(1 - k, 1e-3)
    cmyk = [(1 - r - k) / den, (1 - g - k) / den, (1 - b - k) / den, k]
    cell = rng.uniform(3.0, 6.0) * ss
    yy, xx = np.mgrid[:H, :W].astype(np.float32)
    base = rng.uniform(0, 90)
    inks = []
    for ink, ang_deg in zip(cmyk, (15, 75, 0, 45)):
        a = np.deg2rad(ang_deg + base)
        u = (xx * np.cos(a) + yy * np.sin(a)) / cell
        v = (-xx * np.sin(a) + yy * np.cos(a)) / cell
        # distance to the nearest dot centre, 0..~0.7 of the cell
        du, dv = u - np.round(u), v - np.round(v)
        d = np.sqrt(du * du + dv * dv)
        radius = np.sqrt(np.clip(ink, 0, 1) / np.pi)  # dot area = ink coverage
        inks.append(np.clip((radius - d) * 6 + 0.5, 0, 1))  # soft dot edge
    c, m, y, kk = inks
    paper = np.float32([0.97, 0.98, 0.99])[::-1] * rng.uniform(0.9, 1.0)
    out = np.stack([(1 - y) * (1 - kk), (1 - m) * (1 - kk), (1 - c) * (1 - kk)], axis=2) * paper
    out = cv2.resize(out * 255, (w, h), interpolation=cv2.INTER_AREA)
    out = out * rng.uniform(0.85, 1.1) + rng.uniform(-10, 10)
    return _camera(_clip(out), rng, blur=(0.0, 0.5))


def reshoot(card: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Either kind of re-shoot, two screens out of three."""
    return screen_reshoot(card, rng) if rng.random() < 2 / 3 else print_reshoot(card, rng)


# ------------------------------------------------------------------ border


def place_in_photo(card: np.ndarray, rng: np.random.Generator, margin: float = 0.08):
    """The card warped (small perspective) fully inside a larger background photo.

    Returns (photo, quad, mask): quad float32[4,2] clockwise from the card's
    top-left, at least `margin` of the photo's size from every edge.
    """
    ch, cw = card.shape[:2]
    scale = rng.uniform(0.55, 0.8)
    W = int(cw / scale)
    H = int(W * rng.uniform(0.65, 0.85))
    H = max(H, int(ch / scale) + 2)
    cx, cy = W / 2 + rng.uniform(-0.05, 0.05) * W, H / 2 + rng.uniform(-0.05, 0.05) * H
    ang = np.deg2rad(rng.normal(0, 5))
    base = np.float32([[-cw / 2, -ch / 2], [cw / 2, -ch / 2], [cw / 2, ch / 2], [-cw / 2, ch / 2]])
    base += rng.normal(0, 0.02, base.shape).astype(np.float32) * [cw, ch]
    rot = np.float32([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    quad = base @ rot.T + [cx, cy]
    lo, hi = quad.min(0), quad.max(0)
    shrink = min(1.0, ((1 - 2 * margin) * W) / (hi[0] - lo[0]), ((1 - 2 * margin) * H) / (hi[1] - lo[1]))
    quad = ((quad - [cx, cy]) * shrink + [W / 2, H / 2]).astype(np.float32)
    src = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
    M = cv2.getPerspectiveTransform(src, quad)
    warped = cv2.warpPerspective(card, M, (W, H), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ch, cw), 255, np.uint8), M, (W, H))
    bg = background_photo(rng, W, H)
    m = (mask.astype(np.float32) / 255)[..., None]
    photo = _clip(warped * m + bg * (1 - m))
    return photo, quad, mask > 127


def cut_border(photo: np.ndarray, quad: np.ndarray, mask: np.ndarray, rng: np.random.Generator, detected: bool = True):
    """Crop the photo so part of the card (a corner, or a whole edge strip) falls outside.

    With `detected`, the returned quad is what `quad_from_mask` makes of the
    clipped card mask (as the engine would see it); otherwise the true quad,
    with corners outside the crop. Returns (cropped photo, quad).
    """
    H, W = photo.shape[:2]
    x0, y0, x1, y1 = 0, 0, W, H
    q = order_clockwise(quad)
    lo, hi = q.min(0), q.max(0)
    span = hi - lo
    if rng.random() < 0.6:  # a corner: cut on the two sides meeting at one corner
        k = int(rng.integers(4))
        c = q[k]
        fx, fy = rng.uniform(0.03, 0.25) * span[0], rng.uniform(0.03, 0.25) * span[1]
        if c[0] < q[:, 0].mean():
            x0 = int(c[0] + fx)
        else:
            x1 = int(c[0] - fx)
        if c[1] < q[:, 1].mean():
            y0 = int(c[1] + fy)
        else:
            y1 = int(c[1] - fy)
    else:  # an edge strip
        side = int(rng.integers(4))
        f = rng.uniform(0.03, 0.2)
        if side == 0:
            y0 = int(lo[1] + f * span[1])
        elif side == 1:
            x1 = int(hi[0] - f * span[0])
        elif side == 2:
            y1 = int(hi[1] - f * span[1])
        else:
            x0 = int(lo[0] + f * span[0])
    crop = photo[y0:y1, x0:x1].copy()
    if detected:
        found = quad_from_mask(mask[y0:y1, x0:x1].astype(np.uint8))
        if found is not None:
            return crop, found.astype(np.float32)
    return crop, (q - [x0, y0]).astype(np.float32)
