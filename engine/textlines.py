"""Text lines on a rectified card found from its pixels alone, without a network.

The engine's fallback where its networks miss a line: for a card on which the line locator sees
no number line at all (on the dev photos, a flat black serif number on a pale dragon pattern,
level with the chip), and around a located date that no crop reads (the locator's box pulled up
onto a MONTH/YEAR head above the date).

Digits are dense vertical strokes: the horizontal gradient, thresholded, joined along rows and
opened with a box about a digit wide, leaves one blob per digit group; groups side by side at one
height join into a line. Chip edges, logo outlines and single strokes are too thin to survive the
opening. The sizes were chosen on synthetic cards (the number line is one of the two densest lines
on about 90% of them, with or without the optional Debian fonts and art).
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.geometry import RECT_H, RECT_W

EDGE_PERCENTILE = 90  # the strongest 10% of horizontal gradients are strokes
JOIN = cv2.getStructuringElement(cv2.MORPH_RECT, (15, 1))  # strokes of one digit group (a digit is 25-40 px wide here)
GLYPH = cv2.getStructuringElement(cv2.MORPH_RECT, (25, 5))  # narrower or flatter than this is no digit group (11 rows lost thin digits)
LINE_HEIGHT = (0.03 * RECT_H, 0.16 * RECT_H)  # a digit group's blob height
MIN_LINE_WIDTH = 0.3 * RECT_W  # card numbers run across at least this much of the card
MIN_ASPECT = 5.0
GROUP_GAP = 2.0  # groups of one line are at most this many line heights apart


def text_lines(card: np.ndarray, min_width: float = MIN_LINE_WIDTH, min_aspect: float = MIN_ASPECT, heights: tuple[float, float] = LINE_HEIGHT) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1, pixels of `card`: a rectified card or a window of one) of text lines
    at least `min_width` long and `min_aspect` times as long as tall, made of digit groups whose
    height lies in `heights`, the densest first."""
    gray = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY) if card.ndim == 3 else card
    gx = cv2.GaussianBlur(np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)), (0, 0), 2)
    mask = (gx > np.percentile(gx, EDGE_PERCENTILE)).astype(np.uint8)
    mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, JOIN), cv2.MORPH_OPEN, GLYPH)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    groups = sorted((tuple(int(v) for v in s) for s in stats[1:] if heights[0] < s[3] < heights[1]), key=lambda s: -s[4])
    used: set[int] = set()
    lines = []
    for i, (x, y, w, h, area) in enumerate(groups):
        if i in used:
            continue
        used.add(i)
        x0, y0, x1, y1 = x, y, x + w, y + h
        grew = True
        while grew:  # take in every group centred in this line's rows and near its ends
            grew = False
            gap = GROUP_GAP * (y1 - y0)
            for j, (u, v, gw, gh, ga) in enumerate(groups):
                if j not in used and y0 <= v + gh / 2 <= y1 and u <= x1 + gap and u + gw >= x0 - gap:
                    used.add(j)
                    x0, x1, area, grew = min(x0, u), max(x1, u + gw), area + ga, True
        if x1 - x0 > min_width and x1 - x0 > min_aspect * (y1 - y0):
            lines.append((area, (x0, y0, x1, y1)))
    return [box for _, box in sorted(lines, key=lambda t: -t[0])]
