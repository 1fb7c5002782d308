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
        return Lines(line_box(heat[0], self.policy.number_peak), cells, heat=heat, locator_input=x)

    def dates(self, lines: Lines, want_issue: bool) -> dict[str, Box]:
        """Date boxes on a view already located. The date locator (a fine-tune of the locator for
        dates) is asked only where the locator's own date channel sees nothing."""
        heat, date_heat = lines.heat, None
        out = {}
        for c, name in enumerate(LOC_CHANNELS):
            if name == "expiry" or (name == "issue" and want_issue):
                box = line_box(heat[c], self.policy.date_peak)
                if box is None and self.date_locator is not None and self.policy.date_locator_fallback:
                    if date_heat is None:
                        date_heat = self.date_locator(lines.locator_input).sigmoid().numpy()[0]
                    box = line_box(date_heat[c], self.policy.date_peak)
                if box is not None:
                    out[name] = box
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
