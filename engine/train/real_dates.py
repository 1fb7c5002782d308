"""Date boxes on the real photos of realcards-boxes, from the text lines a general OCR found on
them (engine/train/ocr_lines.py): which lines are dates, and which date each is.

    dates = photo_dates(lines)   # [(kind, quad)]: kind "expiry", "issue" or None (a date, kind unknown)

A date is a run like 12/25, 05/2024 or 88/88 (issuers' specimen cards) in an OCR line; where the
line holds its label too (VALID THRU 12/25, 有效期限08/24), the date's part of the line is cut
out by its characters' widths. What it is comes from the words printed with it: in its own line
or in a line just left of it (the stacked VALID / THRU of most cards). Two dates with nothing to
tell them apart are the issue date and the expiry, left to right; one date with no label has no
kind (the engine must not learn that every unlabelled date is an expiry: cards that print only
the issue date print it so).
"""
from __future__ import annotations

import json
import re

import numpy as np

# Characters the OCR reads in an embossed date's digits; a date has a slash between two runs.
_D = "0-9OoBDSZQ"
DATE_RUN = re.compile(rf"(?<![{_D}/])[{_D}]{{1,4}}/[{_D}]{{2,4}}(?![{_D}/])")
EXPIRY_WORDS = ("THRU", "THU", "THRD", "GOOD", "EXP", "UNTIL", "END", "有效", "到期", "止")
ISSUE_WORDS = ("FROM", "SINCE", "ISSUE", "发卡", "發卡", "起")
# The stacked VALID / THRU, read as one garbled word before the date (YAU, YAHU, VAUM 88/88).
STACKED_LABEL = re.compile(r"^[A-Z]{2,5}$")
LABEL_REACH = 4.0  # a label line ends at most this many of the date's heights left of it
# Where a date's ends lie against the OCR's box, in the box's heights, as the engine's locator
# draws a date (trained on synthetic cards, their boxes tight on the ink): at the median over the
# expiry boxes of the photos where the shipped locators saw the date, its heat starts 0.16 inside
# a box that is a whole OCR line (the OCR grows each line a little), 0.26 before one cut out of
# a labelled line (the label's characters are narrower than the cut allows them), and ends 0.1
# inside either. The dates are moved to those ends.
WHOLE_LINE_LEFT, CUT_LEFT, RIGHT = 0.16, -0.26, -0.1


def _width(ch: str) -> int:
    return 2 if ord(ch) > 0x2E80 else 1  # CJK characters are about two digits wide


def _cut(quad: np.ndarray, text: str, start: int, end: int) -> np.ndarray:
    """The part of a line's quad that holds text[start:end], by the characters' widths, with
    its ends where the locator would draw them."""
    w = np.cumsum([0] + [_width(c) for c in text], dtype=np.float32)
    a, b = w[start] / w[-1], w[end] / w[-1]
    height = float(np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2
    length = float(np.linalg.norm(quad[1] - quad[0])) or 1.0
    a += (WHOLE_LINE_LEFT if start == 0 else CUT_LEFT) * height / length
    b += RIGHT * height / length
    top, bottom = quad[1] - quad[0], quad[2] - quad[3]
    return np.float32([quad[0] + a * top, quad[0] + b * top, quad[3] + b * bottom, quad[3] + a * bottom])


def _kind(words: str) -> str | None:
    words = words.upper()
    if any(w in words for w in ISSUE_WORDS):
        return "issue"
    if any(w in words for w in EXPIRY_WORDS):
        return "expiry"
    return None


def photo_dates(lines: list[dict]) -> list[tuple[str | None, np.ndarray]]:
    """(kind, quad in the photo's pixels) for each date among one photo's OCR lines."""
    found = []  # (kind, quad, left x)
    for line in lines:
        text, quad = line["text"].replace(" ", ""), np.float32(line["quad"])
        if "." in text and "/" in text and not re.search(rf"[{_D}]/", text):
            continue  # a web address
        runs = list(DATE_RUN.finditer(text))
        if "-" in text and len(runs) == 1:
            runs = []  # 00100-00/00: a date range misread; its halves are not known
        for j, m in enumerate(runs):
            before = text[: m.start()]
            kind = _kind(before)
            if kind is None and STACKED_LABEL.match(before) and j == 0:
                kind = "expiry"
            if kind is None and len(runs) == 2:
                kind = "issue" if j == 0 else "expiry"  # 00/00-00/00: from, then thru
            found.append([kind, _cut(quad, text, m.start(), m.end())])
    for date in found:
        if date[0] is not None:
            continue
        q = date[1]
        height = float(np.linalg.norm(q[3] - q[0]))
        y0, y1 = q[:, 1].min(), q[:, 1].max()
        for line in lines:  # a label just left of the date, on its rows
            lq = np.float32(line["quad"])
            ly = lq[:, 1].mean()
            if y0 - 0.3 * height <= ly <= y1 + 0.3 * height and q[0, 0] - LABEL_REACH * height <= lq[:, 0].max() <= q[0, 0] + 0.5 * height:
                date[0] = date[0] or _kind(line["text"].replace(" ", ""))
    if len(found) == 2 and found[0][0] is None and found[1][0] is None:
        found.sort(key=lambda d: d[1][:, 0].min())
        found[0][0], found[1][0] = "issue", "expiry"
    return [(k, q) for k, q in found]


def load(path: str) -> dict[str, list[tuple[str | None, np.ndarray]]]:
    """Photo name -> its dates, for every photo in an ocr_lines file (an empty list: none seen)."""
    out = {}
    for row in open(path, encoding="utf-8"):
        d = json.loads(row)
        out[d["name"]] = photo_dates(d["lines"])
    return out
