"""Detection: where the card is in a photo, as the views to read it through.

A view is a card outline (four corners in the photo) in reading order: rectifying it gives the
card landscape and, if it is the right way up, readable. The segmenter's outline comes first,
then the whole frame (a card may fill the photo), each with its half turn. A card of vertical
design (held portrait, the number printed across its short side) is read through the quarter
turns of a view (`quarter_turns`), rectified portrait.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.geometry import landscape_order, quad_from_mask, rotate_order
from engine.models import SEG_SIZE
from engine.preprocess import color_input, letterbox
from engine.runtime import Network


class CardDetector:
    def __init__(self, segmenter: Network):
        self.segmenter = segmenter

    def outline(self, img: np.ndarray) -> np.ndarray | None:
        """The card's corners (clockwise, long side first), or None where no card shape is seen."""
        boxed, scale, (px, py) = letterbox(img, SEG_SIZE)
        x = torch.from_numpy(color_input(boxed, SEG_SIZE, SEG_SIZE))[None]
        mask = (self.segmenter(x)[0, 0].sigmoid() > 0.5).numpy()
        quad = quad_from_mask(mask)
        if quad is None:
            return None
        return landscape_order((quad * 2 - [px, py]) / scale).astype(np.float32)

    def views(self, img: np.ndarray) -> tuple[list[np.ndarray], int]:
        """(views in reading order, index of the first view of the whole frame). Views come in
        pairs: an outline, then its half turn."""
        h, w = img.shape[:2]
        frame = landscape_order(np.float32([[0, 0], [w, 0], [w, h], [0, h]]))
        quad = self.outline(img)
        views = []
        near = 0.03 * max(h, w)
        # The frame is always a view, unless the segmenter's outline is (nearly) the frame already.
        if quad is not None and np.abs(quad - frame).max() > near and np.abs(quad - rotate_order(frame, 1)).max() > near:
            views += [quad, rotate_order(quad, 1)]
        first_frame = len(views)
        views += [frame, rotate_order(frame, 1)]
        return views, first_frame


def quarter_turns(view: np.ndarray) -> list[np.ndarray]:
    """The view's outline started one corner later and one corner earlier: rectified portrait,
    one of them shows a vertical card upright."""
    return [np.roll(view, -1, axis=0), np.roll(view, 1, axis=0)]
