"""Recognition: text bands cut from the rectified card -> per-column class probabilities of the
card text recognizer (engine/textrec.py). Bands of one photo are read as one batch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.geometry import RECT_H, RECT_W
from engine.preprocess import batch_bands, text_band_input
from engine.runtime import Network

Box = tuple[float, float, float, float]


@dataclass
class Band:
    """Rows y0..y1 and columns x0..x1 of the rectified card, as read."""

    x0: int
    y0: int
    x1: int
    y1: int

    def cut(self, card: np.ndarray) -> np.ndarray:
        return card[self.y0 : self.y1, self.x0 : self.x1]

    def columns_to_box(self, first: int, last: int, columns: int) -> Box:
        """Recognizer columns first..last (of `columns`) -> a box on the card."""
        px = (self.x1 - self.x0) / max(columns, 1)
        return self.x0 + first * px, self.y0, min(self.x1, self.x0 + (last + 1) * px), self.y1


def number_band(box: Box, margin: float, card_size: tuple[int, int] = (RECT_W, RECT_H)) -> Band:
    """The number line's rows with `margin` line heights above and below, at the card's full
    width: the recognizer finds where the digits start and end, so no crop can cut one off."""
    h, (w, card_h) = box[3] - box[1], card_size
    return Band(0, int(max(0, box[1] - margin * h)), w, int(min(card_h, box[3] + margin * h)))


def date_band(box: Box, line_height: float, margin: float, left: float, right: float, min_height: float) -> Band:
    """A located date's rows (at least `min_height` number-line heights tall, `margin` of that
    above and below) reaching `left` and `right` number-line heights past the box: room for the
    first digits, which the locator's box often misses, and for a VALID THRU / FROM label."""
    cy, h = (box[1] + box[3]) / 2, max(box[3] - box[1], min_height * line_height) * (1 + 2 * margin)
    x0, x1 = box[0] - left * line_height, box[2] + right * line_height
    return Band(int(max(0, x0)), int(max(0, cy - h / 2)), int(min(RECT_W, x1)), int(min(RECT_H, cy + h / 2)))


def label_band(box: Box, line_height: float, margin: float, reach: float, min_height: float) -> Band:
    """The rows of date_band left of the located date, `reach` number-line heights of them:
    where its label is printed, or the century of a year written first."""
    b = date_band(box, line_height, margin, reach, 0.0, min_height)
    return Band(b.x0, b.y0, max(b.x0 + 1, int(box[0])), b.y1)


class BandRecognizer:
    def __init__(self, network: Network, alphabet: str, column_px: int):
        self.network, self.alphabet, self.column_px = network, alphabet, column_px

    def __call__(self, card: np.ndarray, bands: list[Band]) -> list[np.ndarray]:
        """Per band: T x classes probabilities (T = its own width in columns, padding dropped)."""
        inputs = [text_band_input(b.cut(card)) for b in bands]
        logits = self.network(batch_bands(inputs)).numpy()
        out = []
        for x, lg in zip(inputs, logits):
            lg = lg[: x.shape[2] // self.column_px]
            e = np.exp(lg - lg.max(1, keepdims=True))
            out.append(e / e.sum(1, keepdims=True))
        return out
