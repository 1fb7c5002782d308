"""Recognition: text bands cut from the rectified card -> per-column class probabilities of the
card text recognizer (engine/textrec.py). Bands of one photo are read as one batch."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.geometry import RECT_H, RECT_W
from engine.preprocess import TEXT_MAX_ASPECT, batch_bands, text_band_input
from engine.runtime import Network

Box = tuple[float, float, float, float]


@dataclass
class Band:
    """Rows y0..y1 and columns x0..x1 of the rectified card, as read. A band with a slope runs
    aslant: its rows are y0..y1 at its middle column and rise by `slope` per pixel across; its
    columns may reach past the card's outline (read with `warp`, from the photo)."""

    x0: int
    y0: int
    x1: int
    y1: int
    slope: float = 0.0

    def cut(self, card: np.ndarray) -> np.ndarray:
        return card[self.y0 : self.y1, self.x0 : self.x1]

    def warp(self, photo: np.ndarray, H: np.ndarray) -> np.ndarray:
        """The band straightened, from the photo the card was rectified from (H: card -> photo),
        as `rectify` samples it."""
        xm = (self.x0 + self.x1) / 2
        to_card = np.array([[1.0, 0.0, self.x0], [self.slope, 1.0, self.y0 + self.slope * (self.x0 - xm)], [0.0, 0.0, 1.0]])
        M = np.linalg.inv(H @ to_card)
        return cv2.warpPerspective(photo, M, (self.x1 - self.x0, self.y1 - self.y0), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)

    def columns_to_quad(self, first: int, last: int, columns: int) -> np.ndarray:
        """Recognizer columns first..last (of `columns`) -> the four corners on the card they
        cover, following the band's slope."""
        x0, _, x1, _ = self.columns_to_box(first, last, columns)
        xm = (self.x0 + self.x1) / 2
        return np.float32([[x0, self.y0 + self.slope * (x0 - xm)], [x1, self.y0 + self.slope * (x1 - xm)],
                           [x1, self.y1 + self.slope * (x1 - xm)], [x0, self.y1 + self.slope * (x0 - xm)]])

    def columns_to_box(self, first: int, last: int, columns: int) -> Box:
        """Recognizer columns first..last (of `columns`) -> a box on the card."""
        px = (self.x1 - self.x0) / max(columns, 1)
        return self.x0 + first * px, self.y0, min(self.x1, self.x0 + (last + 1) * px), self.y1


def number_band(box: Box, margin: float, card_size: tuple[int, int] = (RECT_W, RECT_H), slope: float = 0.0, height: float | None = None, past_edges: float = 0.0) -> Band:
    """The number line's rows with `margin` line heights above and below, at the card's full
    width and `past_edges` of it beyond each side: the recognizer finds where the digits start
    and end, so no crop can cut one off, nor an outline found a little inside the card. A line
    found aslant (`slope`, its own `height` across it) gives a band that follows it."""
    (w, card_h), h = card_size, box[3] - box[1] if height is None else height
    pad = int(round(past_edges * w))
    centre = (box[1] + box[3]) / 2 + slope * (w / 2 - (box[0] + box[2]) / 2)  # at the card's middle column
    return Band(-pad, int(max(0, centre - (0.5 + margin) * h)), w + pad, int(min(card_h, centre + (0.5 + margin) * h)), slope)


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
    def __init__(self, network: Network, alphabet: str, column_px: int, height: int):
        self.network, self.alphabet, self.column_px, self.height = network, alphabet, column_px, height

    def __call__(self, card: np.ndarray, bands: list[Band]) -> list[np.ndarray]:
        """Per band: T x classes probabilities (T = its own width in columns, padding dropped)."""
        return self.read([b.cut(card) for b in bands])

    def read(self, images: list[np.ndarray], max_aspect: float = TEXT_MAX_ASPECT) -> list[np.ndarray]:
        """Per band image: T x classes probabilities; a band longer than `max_aspect` of its
        heights is squeezed to it."""
        inputs = [text_band_input(img, max_aspect, self.height) for img in images]
        logits = self.network(batch_bands(inputs)).numpy()
        out = []
        for x, lg in zip(inputs, logits):
            lg = lg[: x.shape[2] // self.column_px]
            e = np.exp(lg - lg.max(1, keepdims=True))
            out.append(e / e.sum(1, keepdims=True))
        return out
