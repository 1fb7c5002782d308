"""Turning images into network inputs. Training and inference share these, so they cannot drift."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from engine.models import ALPHABET, LOC_H, LOC_W, REC_H, SEG_SIZE
from engine.textrec import TEXT_H

REC_MAX_W = 512


def to_gray(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def line_input(crop: np.ndarray) -> np.ndarray:
    """A text-line crop -> float32 REC_H x W, per-crop normalised (contrast varies wildly on cards)."""
    gray = to_gray(crop)
    h, w = gray.shape
    new_w = int(np.clip(round(w * REC_H / max(h, 1)), 16, REC_MAX_W))
    new_w += (-new_w) % 4
    small = cv2.resize(gray, (new_w, REC_H), interpolation=cv2.INTER_AREA if h > REC_H else cv2.INTER_LINEAR)
    lo, hi = percentiles_u8(small, (2, 98))
    x = small.astype(np.float32)
    return np.clip((x - lo) / max(hi - lo, 8.0) * 2 - 1, -1.5, 1.5)


def percentiles_u8(img: np.ndarray, qs) -> list[float]:
    """np.percentile(img, qs) (linear interpolation) for a uint8 image, read off its cumulative
    histogram instead of sorting: the same values, about eight times faster on a line crop."""
    n = img.size
    below = np.cumsum(np.bincount(img.ravel(), minlength=256))  # below[v]: pixels <= v
    out = []
    for q in qs:
        pos = (n - 1) * q / 100
        k = int(pos)
        t = pos - k
        a = int(np.searchsorted(below, k, side="right"))  # the k-th smallest value (0-based)
        b = int(np.searchsorted(below, min(k + 1, n - 1), side="right"))
        out.append(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)  # numpy's own lerp
    return out


def batch_lines(lines: list[np.ndarray]) -> torch.Tensor:
    """Pad line inputs to one width (zeros = mid-grey) -> N x 1 x REC_H x Wmax."""
    wmax = max(x.shape[1] for x in lines)
    out = np.zeros((len(lines), 1, REC_H, wmax), np.float32)
    for i, x in enumerate(lines):
        out[i, 0, :, : x.shape[1]] = x
    return torch.from_numpy(out)


def encode_text(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in text]


def color_input(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """BGR image resized to h x w -> float32 3 x h x w in [-1, 1]."""
    x = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (x / 127.5 - 1.0).transpose(2, 0, 1)


def letterbox(img: np.ndarray, size: int = SEG_SIZE) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Fit the photo into size x size keeping aspect; return (image, scale, (pad_x, pad_y))."""
    h, w = img.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.full((size, size, 3), 114, np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    out[py : py + nh, px : px + nw] = resized
    return out, scale, (px, py)


def locator_input(card: np.ndarray) -> np.ndarray:
    return color_input(card, LOC_H, LOC_W)


TEXT_MAX_ASPECT = 21.34  # a band longer than this many of its heights is squeezed to it (1024 px at 48)


def text_band_input(band: np.ndarray, max_aspect: float = TEXT_MAX_ASPECT, height: int = TEXT_H) -> np.ndarray:
    """A text band (BGR, any size) -> float32 3 x height x W in [-1, 1], aspect kept up to
    `max_aspect` heights (a longer band is squeezed to it), as the pretrained text recognizer
    was trained (engine/textrec.py)."""
    img = band if band.ndim == 3 else cv2.cvtColor(band, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    new_w = int(np.clip(round(w * height / max(h, 1)), 16, int(max_aspect * height)))
    new_w += (-new_w) % 8  # whole recognizer columns
    x = cv2.resize(img, (new_w, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
    return (x.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def batch_bands(bands: list[np.ndarray]) -> torch.Tensor:
    """Band inputs padded on the right to one width (zeros: mid-grey) -> N x 3 x H x Wmax."""
    wmax = max(x.shape[2] for x in bands)
    out = np.zeros((len(bands), *bands[0].shape[:2], wmax), np.float32)
    for i, x in enumerate(bands):
        out[i, :, :, : x.shape[2]] = x
    return torch.from_numpy(out)
