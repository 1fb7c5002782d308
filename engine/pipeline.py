"""The engine: decode -> find the card -> rectify -> locate lines -> read -> decide.

    engine = Engine.load()
    reading = engine.read(jpeg_bytes, ReadOptions())

One Engine per process; `read` is thread-safe (networks are only evaluated).
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Callable

import cv2
import numpy as np
import torch

import bin_tables
from engine import checks
from engine.decode import decode_image
from engine.decoding import LineRead, decide_date, decide_number, greedy_read
from engine.errors import EngineError, NoCardFoundError, NumberUnreadableError
from engine.geometry import RECT_H, RECT_W, landscape_order, map_points, quad_from_mask, rectify, rotate_order
from engine.models import LOC_CHANNELS, LOC_H, LOC_W, SEG_SIZE, CardSegmenter, LineLocator, NumberRecognizer
from engine.preprocess import batch_lines, color_input, letterbox, line_input, locator_input
from engine.types import Box, CardReading, ReadOptions, TextField

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
NUMBER_PEAK_MIN = 0.5  # locator confidence below which there is no number line (so no card)
DATE_PEAK_MIN = 0.5


def _load(model: torch.nn.Module, path: str) -> torch.nn.Module:
    blob = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    return model.eval()


class Engine:
    def __init__(self, segmenter: CardSegmenter, locator: LineLocator, recognizer: NumberRecognizer, *, clock: Callable[[], datetime] | None = None):
        self.segmenter, self.locator, self.recognizer = segmenter, locator, recognizer
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.ready = True

    @classmethod
    def load(cls, weights_dir: str = WEIGHTS_DIR, threads: int | None = 1, **kw) -> "Engine":
        if threads:
            torch.set_num_threads(threads)
        return cls(
            _load(CardSegmenter(), os.path.join(weights_dir, "detector.pt")),
            _load(LineLocator(), os.path.join(weights_dir, "locator.pt")),
            _load(NumberRecognizer(), os.path.join(weights_dir, "recognizer.pt")),
            **kw,
        )

    # ------------------------------------------------------------------ public

    def read(self, image: bytes | np.ndarray, options: ReadOptions = ReadOptions()) -> CardReading:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if isinstance(image, (bytes, bytearray, memoryview)):
            img = decode_image(bytes(image), max_pixels=options.max_pixels, min_side=options.min_side)
        else:
            img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        timings["decode"] = _ms(t0)
        with torch.inference_mode():  # evaluation only: safe to call from several threads
            return self._read(img, options, timings, t0)

    def read_batch(self, images, options: ReadOptions = ReadOptions()) -> list[CardReading | EngineError]:
        out: list[CardReading | EngineError] = []
        for image in images:
            try:
                out.append(self.read(image, options))
            except EngineError as exc:
                out.append(exc)
        return out

    # ------------------------------------------------------------------ stages

    def find_card(self, img: np.ndarray) -> tuple[np.ndarray | None, float]:
        """Card corners (clockwise, long side first) from the segmenter, and its mask coverage."""
        boxed, scale, (px, py) = letterbox(img, SEG_SIZE)
        x = torch.from_numpy(color_input(boxed, SEG_SIZE, SEG_SIZE))[None]
        mask = (self.segmenter(x)[0, 0].sigmoid() > 0.5).numpy()
        quad = quad_from_mask(mask)
        if quad is None:
            return None, 0.0
        quad = (quad * 2 - [px, py]) / scale
        return landscape_order(quad).astype(np.float32), float(mask.mean())

    def _candidates(self, img: np.ndarray) -> list[np.ndarray]:
        h, w = img.shape[:2]
        frame = landscape_order(np.float32([[0, 0], [w, 0], [w, h], [0, h]]))
        quad, _ = self.find_card(img)
        cands = []
        if quad is not None:
            cands += [quad, rotate_order(quad, 1)]
        # The card may fill the whole photo (vendors recommend 2/3 or more): try the frame too.
        cands += [frame, rotate_order(frame, 1)]
        return cands

    def _read(self, img: np.ndarray, options: ReadOptions, timings: dict, t0: float) -> CardReading:
        t = time.perf_counter()
        cands = self._candidates(img)
        timings["detect"] = _ms(t)

        t = time.perf_counter()
        cards = [rectify(img, q) for q in cands]
        heat = self.locator(torch.from_numpy(np.stack([locator_input(c) for c, _ in cards])))
        heat = heat.sigmoid().numpy()  # N x 3 x LOC_H/2 x LOC_W/2
        peaks = heat[:, 0].reshape(len(cards), -1).max(1)
        best = int(np.argmax(peaks))
        timings["locate"] = _ms(t)
        if peaks[best] < NUMBER_PEAK_MIN:
            raise NoCardFoundError("no card number line found")
        card, H = cards[best]
        quad = cands[best]

        t = time.perf_counter()
        boxes = {name: _heat_box(heat[best, c], DATE_PEAK_MIN if name != "number" else NUMBER_PEAK_MIN) for c, name in enumerate(LOC_CHANNELS)}
        crops = {name: _crop_line(card, box) for name, box in boxes.items() if box is not None}
        names = list(crops)
        logits = self.recognizer(batch_lines([line_input(crops[n][0]) for n in names]))
        probs = logits.softmax(-1).numpy()
        reads: dict[str, LineRead] = {}
        for i, n in enumerate(names):
            width = line_input(crops[n][0]).shape[1] // 4
            reads[n] = greedy_read(probs[i, :width])
        timings["read"] = _ms(t)

        decision = decide_number(reads["number"])
        if decision is None:
            raise NumberUnreadableError("number not read with confidence")
        number_box = crops["number"][1]
        number_quad = _box_quad(H, number_box)

        now = self.clock()
        fields = {}
        for name in ("expiry", "issue"):
            if name in reads:
                got = decide_date(reads[name])
                if got:
                    fields[name] = TextField(text=got[0], confidence=got[1], quad=number_quad_t(_box_quad(H, crops[name][1])), box=_box(crops[name][1]))

        t = time.perf_counter()
        warnings, quality = checks.run(img, quad, card, options, expiry=fields.get("expiry"), now=now)
        timings["checks"] = _ms(t)

        reading = CardReading(
            number=decision.digits,
            number_printed=decision.printed,
            number_confidence=decision.confidence,
            digit_confidences=decision.digit_confidences,
            number_valid=decision.valid,
            number_quad=number_quad_t(number_quad),
            number_box=_box(number_box),
            card_quad=number_quad_t(quad),
            image_size=(int(img.shape[1]), int(img.shape[0])),
            rectified_size=(RECT_W, RECT_H),
            expiry=fields.get("expiry"),
            issue_date=fields.get("issue"),
            bank=bin_tables.bank_info(decision.digits),
            quality=quality if options.want_quality else None,
            warnings=warnings,
            border_cut_jpeg=_jpeg(card) if options.want_border_cut_image else None,
            card_no_jpeg=_jpeg(crops["number"][0]) if options.want_card_no_image else None,
        )
        timings["total"] = _ms(t0)
        reading.timings_ms = timings
        return reading


# ---------------------------------------------------------------------- helpers


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 2)


def _heat_box(heat: np.ndarray, thresh: float) -> tuple[float, float, float, float] | None:
    """Bounding box (rectified-card pixels) of the strongest blob of one heatmap channel."""
    if heat.max() < thresh:
        return None
    mask = (heat > min(thresh, heat.max() * 0.5)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n <= 1:
        return None
    peak_label = labels[np.unravel_index(np.argmax(heat), heat.shape)]
    if peak_label == 0:
        peak_label = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = stats[peak_label, :4]
    sx, sy = RECT_W / heat.shape[1], RECT_H / heat.shape[0]
    return x * sx, y * sy, (x + w) * sx, (y + h) * sy


def _crop_line(card: np.ndarray, box) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Crop a located line with a margin like the recognizer saw in training."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    x0, x1 = max(0, int(x0 - 0.4 * h)), min(RECT_W, int(x1 + 0.4 * h))
    y0, y1 = max(0, int(y0 - 0.2 * h)), min(RECT_H, int(y1 + 0.2 * h))
    return card[y0:y1, x0:x1], (x0, y0, x1, y1)


def _box(b) -> Box:
    x0, y0, x1, y1 = b
    return Box(x=int(x0), y=int(y0), width=int(x1 - x0), height=int(y1 - y0))


def _box_quad(H: np.ndarray, b) -> np.ndarray:
    x0, y0, x1, y1 = b
    return map_points(H, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def number_quad_t(q: np.ndarray):
    return tuple((round(float(x), 1), round(float(y), 1)) for x, y in np.asarray(q).reshape(4, 2))


def _jpeg(img: np.ndarray) -> bytes:
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return enc.tobytes()
