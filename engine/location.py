"""Location: the number line and the dates on a rectified card, from the line locator's heatmaps.

The locator sees a small copy of the card (LOC_W x LOC_H) and answers one heatmap per line kind
(LOC_CHANNELS). A box here is (x0, y0, x1, y1) in rectified-card pixels (RECT_W x RECT_H).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from engine.geometry import RECT_H, RECT_W, rectify
from engine.models import LOC_CHANNELS, LOC_H, LOC_W
from engine.policy import Policy
from engine.preprocess import locator_input
from engine.runtime import Network

Box = tuple[float, float, float, float]
LINE_EXTEND_FRACTION = 0.3  # heat above this fraction of the threshold extends a line sideways


@dataclass
class Lines:
    """What the locator found on one view."""

    number: Box | None
    number_cells: int  # heatmap cells above the threshold: how strongly it sees a number line
    number_slope: float = 0.0  # the number line's rise per pixel across the card (a tilted outline)
    number_height: float | None = None  # the line's own height, across it: the box's less its tilt
    dates: dict[str, Box] = field(default_factory=dict)  # "expiry" / "issue" -> box
    heat: np.ndarray | None = None  # every channel's heatmap: the date channels are read if asked
    locator_input: torch.Tensor | None = None  # kept to ask the date locator later


class LineFinder:
    def __init__(self, locator: Network, date_locator: Network | None, policy: Policy):
        self.locator, self.date_locator, self.policy = locator, date_locator, policy

    def number_line(self, small: np.ndarray, quad_small: np.ndarray) -> Lines:
        """The number line on the view `quad_small` of the shrunk photo `small`."""
        x = torch.from_numpy(locator_input(rectify(small, quad_small, (LOC_W, LOC_H))[0])[None])
        heat = self.locator(x).sigmoid().numpy()[0]
        cells = int((heat[0] > self.policy.number_peak).sum())
        box = line_box(heat[0], self.policy.number_peak)
        slope, height = line_slope(heat[0], self.policy.number_peak, box) if box is not None else (0.0, None)
        return Lines(box, cells, slope, height, heat=heat, locator_input=x)

    def dates(self, lines: Lines, want_issue: bool) -> dict[str, Box]:
        """Date boxes on a view already located, from the heat of the networks the policy names
        (date_heat), each asked only where those before it see no date."""
        heats: dict[str, np.ndarray] = {}

        def heat(source: str) -> np.ndarray | None:
            if source not in heats:
                if source == "locator":
                    heats[source] = lines.heat
                elif self.date_locator is not None:
                    heats[source] = self.date_locator(lines.locator_input).sigmoid().numpy()[0]
            return heats.get(source)

        out = {}
        for c, name in enumerate(LOC_CHANNELS):
            if name == "expiry" or (name == "issue" and want_issue):
                for source in self.policy.date_heat:
                    h = heat(source)
                    box = line_box(h[c], self.policy.date_peak) if h is not None else None
                    if box is not None:
                        out[name] = box
                        break
        return out


def line_box(heat: np.ndarray, thresh: float) -> Box | None:
    """Box (rectified-card pixels) of the text line under a heatmap channel's strongest blob.

    A line often breaks into several blobs (gaps between digit groups, glare): every blob whose
    centre lies in the strongest blob's band belongs to it, and weaker heat in that band extends
    it sideways.
    """
    if heat.max() < thresh:
        return None
    mask = (heat > thresh).astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask)
    if n <= 1:
        return None
    # The line is the blob with the most heat, weighted by how wide it is for its height: a number
    # line is long and thin, artwork that the locator half-mistakes for digits is not.
    aspect = stats[1:, cv2.CC_STAT_WIDTH] / np.maximum(stats[1:, cv2.CC_STAT_HEIGHT], 1)
    main = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA] * [heat[labels == k].mean() for k in range(1, n)] * np.minimum(aspect, 8)))
    x, y, w, h = stats[main, :4]
    x0, y0, x1, y1 = x, y, x + w, y + h
    for k in range(1, n):
        if k != main and y - 0.5 * h <= centroids[k][1] <= y + 1.5 * h:
            kx, ky, kw, kh = stats[k, :4]
            x0, x1 = min(x0, kx), max(x1, kx + kw)  # sideways only: blobs below are often other print
    band = heat[y0:y1] > thresh * LINE_EXTEND_FRACTION
    cols = np.flatnonzero(band.any(0))
    if len(cols):
        for run in np.split(cols, np.flatnonzero(np.diff(cols) > 2) + 1):
            if run[0] <= x1 and run[-1] + 1 >= x0:  # the run touches the line
                x0, x1 = min(x0, int(run[0])), max(x1, int(run[-1]) + 1)
    sx, sy = RECT_W / heat.shape[1], RECT_H / heat.shape[0]
    return x0 * sx, y0 * sy, x1 * sx, y1 * sy


def line_slope(heat: np.ndarray, thresh: float, box: Box) -> tuple[float, float]:
    """(rise per pixel, height) of the text line under `box` (rectified-card pixels) in one
    heatmap channel: a straight line fitted through each column's centre of heat, weighted by
    its heat, and the median of the columns' thickness. On a card whose outline was found a little
    off, the number line runs aslant: its box is its height plus its rise."""
    sx, sy = RECT_W / heat.shape[1], RECT_H / heat.shape[0]
    x0, y0 = int(box[0] / sx), int(box[1] / sy)
    x1, y1 = int(np.ceil(box[2] / sx)), int(np.ceil(box[3] / sy))
    cells = heat[y0:y1, x0:x1] * (heat[y0:y1, x0:x1] > thresh)
    weight = cells.sum(0)
    cols = np.flatnonzero(weight > 0)
    if len(cols) < 3:
        return 0.0, box[3] - box[1]
    rows = np.arange(y0, y1) + 0.5
    centre = (cells[:, cols] * rows[:, None]).sum(0) / weight[cols]
    x = (x0 + cols + 0.5) * sx
    w = weight[cols]
    xm, ym = np.average(x, weights=w), np.average(centre * sy, weights=w)
    slope = float(np.sum(w * (x - xm) * (centre * sy - ym)) / max(np.sum(w * (x - xm) ** 2), 1e-9))
    thickness = float(np.median((cells[:, cols] > 0).sum(0))) * sy
    return slope, min(thickness, box[3] - box[1])
