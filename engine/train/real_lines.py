"""Real number lines for the locator: the photos of realcards-boxes, each seen as the engine sees
it (the outline its detector finds, and the whole frame), with the labelled number-line box.

    views = real_views(dates=real_dates.load("runs/boxes_ocr.jsonl"))  # once: decode, detect, map boxes into views
    img, target = real_sample(rng, views[i])   # a locator input and its heatmaps

The boxes say where the number line is, nothing about dates. Dates come, where given, from the
lines a general OCR found (engine/train/ocr_lines.py, real_dates.py). On a photo where it found
none, a sample's date channels are -1 ("unknown"; engine.train.common.dice_bce leaves them out of
the loss); where it found one, they are 0 off the dates, 1 on each date of a known kind in its
channel, and -1 on a date whose kind no label tells. A view is kept where the
box lies inside it and reads there as a line (at least 4 of its heights wide); the photos are
taken to be upright (their boxes are level text), so of an outline and its half turn the view
kept is the one where the box's left end stays on the left.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from engine.detection import CardDetector
from engine.geometry import RECT_H, RECT_W
from engine.models import LOC_CHANNELS, LOC_H, LOC_W, CardSegmenter
from engine.pipeline import LOCATE_SOURCE_SIDE, WEIGHTS_DIR, _shrink
from engine.preprocess import color_input
from engine.runtime import evaluator, load_network

BOXES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "..", "shared", "data", "realcards-boxes")
NUMBER, EXPIRY, ISSUE = (LOC_CHANNELS.index(c) for c in ("number", "expiry", "issue"))
MIN_ASPECT = 4.0  # a number line is at least this many of its heights wide on the card
LINE_HEIGHTS = (0.03, 0.2)  # of the card's height: a box outside is not a number line on that view
HELD_OUT = 10  # one photo in this many (by a hash of its name) is kept for validation
# The boxes of realcards-boxes are loose around the digits, the synthetic cards' tight: the shipped
# locator's heat (trained on synthetic cards only) is 0.59 of a box's height at the median over 286
# views it found (its width 0.97). A real box is squeezed to this share of its height about its
# middle, so that the line's height (which sizes the number band) means the same on both (with
# 0.5 that heat is 1.0 of the squeezed box at the median, with 0.6 0.875).
BOX_HEIGHT_SHARE = 0.5
# The OCR's date boxes are not loose: the shipped locators' date heat is 1.1 (locator) and 0.98
# (date locator) of their height, 1.09 and 1.01 of their width, at the median over the 180 and 202
# views of 241 expiry boxes where each saw the date. They are filled as they are.


@dataclass
class RealView:
    name: str
    photo: np.ndarray  # BGR, shrunk as the engine shrinks a photo to locate on it
    quad: np.ndarray  # the view's corners in `photo` (clockwise from the card's top left)
    box: np.ndarray  # the number line's 4 corners in `photo`
    # Its dates: (kind, 4 corners in `photo`), kind "expiry", "issue" or None (unknown); None
    # where none was seen (the date channels are then unknown everywhere).
    dates: list[tuple[str | None, np.ndarray]] | None = None


def held_out(name: str) -> bool:
    return zlib.crc32(name.encode()) % HELD_OUT == 0


def _yolo_boxes(path: str, w: int, h: int) -> list[np.ndarray]:
    out = []
    for line in open(path, encoding="utf-8").read().split("\n"):
        parts = line.split()
        if len(parts) == 5 and parts[0] == "0":
            cx, cy, bw, bh = (float(v) for v in parts[1:])
            x0, y0, x1, y1 = (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h
            out.append(np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    return out


def _fits(quad: np.ndarray, box: np.ndarray) -> bool:
    """Whether `box` reads as a number line, left to right, on the view `quad`."""
    M = cv2.getPerspectiveTransform(quad.astype(np.float32), np.float32([[0, 0], [RECT_W, 0], [RECT_W, RECT_H], [0, RECT_H]]))
    b = cv2.perspectiveTransform(box[None], M)[0]
    left, right = (b[0] + b[3]) / 2, (b[1] + b[2]) / 2
    height = (np.linalg.norm(b[3] - b[0]) + np.linalg.norm(b[2] - b[1])) / 2
    inside = b[:, 0].min() > -0.05 * RECT_W and b[:, 0].max() < 1.05 * RECT_W and b[:, 1].min() > 0 and b[:, 1].max() < RECT_H
    return bool(inside and right[0] > left[0] and np.linalg.norm(right - left) > MIN_ASPECT * height and LINE_HEIGHTS[0] * RECT_H < height < LINE_HEIGHTS[1] * RECT_H)


def _inside(quad: np.ndarray, box: np.ndarray) -> bool:
    M = cv2.getPerspectiveTransform(quad.astype(np.float32), np.float32([[0, 0], [RECT_W, 0], [RECT_W, RECT_H], [0, RECT_H]]))
    b = cv2.perspectiveTransform(box[None].astype(np.float32), M)[0]
    return bool(b[:, 0].min() > 0 and b[:, 0].max() < RECT_W and b[:, 1].min() > 0 and b[:, 1].max() < RECT_H and b[1, 0] > b[0, 0])


def real_views(root: str = BOXES, detector: CardDetector | None = None, dates: dict | None = None) -> list[RealView]:
    """Every usable view of every photo with one number-line box; with `dates` (photo name ->
    [(kind, quad in its pixels)], engine.train.real_dates.load), the dates inside each view."""
    if detector is None:
        seg = load_network(CardSegmenter, os.path.join(WEIGHTS_DIR, "detector.pt"))
        detector = CardDetector(evaluator(seg, "torch", None))
    out = []
    for name in sorted(os.listdir(os.path.join(root, "images"))):
        img = cv2.imread(os.path.join(root, "images", name), cv2.IMREAD_COLOR)
        label = os.path.join(root, "labels", os.path.splitext(name)[0] + ".txt")
        if img is None or not os.path.exists(label):
            continue
        boxes = _yolo_boxes(label, img.shape[1], img.shape[0])
        if len(boxes) != 1:
            continue
        small, scale = _shrink(img, LOCATE_SOURCE_SIDE)
        box = boxes[0] * scale
        seen = [(k, q * scale) for k, q in dates.get(name, [])] if dates else []
        for quad in detector.views(small)[0]:
            if _fits(quad, box):
                inside = [(k, q) for k, q in seen if _inside(quad, q)]
                out.append(RealView(name, small, quad, box, inside or None))
    return out


def real_sample(rng: np.random.Generator, view: RealView, flip_share: float = 0.3, corner_error: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """The view warped to the locator's input with the corner error a detector makes, and its
    heatmaps: the number line filled, the dates as the module's docstring says. Upside down
    (flip_share): every channel empty, as on synthetic cards."""
    size = view.quad.max(0) - view.quad.min(0)
    quad = view.quad + rng.normal(0, corner_error, (4, 2)) * size
    M = cv2.getPerspectiveTransform(quad.astype(np.float32), np.float32([[0, 0], [LOC_W, 0], [LOC_W, LOC_H], [0, LOC_H]]))
    img = cv2.warpPerspective(view.photo, M, (LOC_W, LOC_H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    target = np.full((len(LOC_CHANNELS), LOC_H // 2, LOC_W // 2), -1.0, np.float32)
    if rng.random() < flip_share:
        return color_input(img[::-1, ::-1].copy(), LOC_H, LOC_W), np.zeros_like(target)
    target[NUMBER] = 0.0
    _fill(target[NUMBER], _squeezed(view.box, BOX_HEIGHT_SHARE), M, 1.0)
    if view.dates:
        target[EXPIRY] = target[ISSUE] = 0.0
        for kind, quad in sorted(view.dates, key=lambda d: d[0] is not None):  # unknown first: a known date wins
            for channel, name in ((EXPIRY, "expiry"), (ISSUE, "issue")):
                if kind is None or kind == name:
                    _fill(target[channel], quad, M, -1.0 if kind is None else 1.0)
    return color_input(img, LOC_H, LOC_W), target


def _squeezed(box: np.ndarray, height_share: float) -> np.ndarray:
    """A box's 4 corners moved toward its middle line by this share."""
    mid = (box + box[[3, 2, 1, 0]]) / 2  # each corner's point on the box's middle line
    return mid + (box - mid) * height_share


def _fill(channel: np.ndarray, box: np.ndarray, M: np.ndarray, value: float) -> None:
    pts = cv2.perspectiveTransform(box[None].astype(np.float32), M)[0] / 2
    cv2.fillPoly(channel, [np.round(pts * 4).astype(np.int32)], value, shift=2)
