"""The engine: decode -> detect the card -> locate its lines -> recognize bands -> decode.

    engine = Engine.load()
    reading = engine.read(jpeg_bytes, ReadOptions())

Each stage is a small object with one job (engine/detection.py, location.py, recognition.py,
number_decoder.py, dates.py); Engine only composes them, under one Policy (engine/policy.py).
One Engine per process; `read` is thread-safe (networks are only evaluated).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import cv2
import numpy as np
import torch

import bin_tables
from engine import checks
from engine.dates import in_context, pick, read_dates
from engine.decode import decode_image, header_size
from engine.detection import CardDetector, quarter_turns
from engine.errors import EngineError, ImageBlurredError, NoCardFoundError, NumberUnreadableError
from engine.geometry import RECT_H, RECT_W, map_points, rectify
from engine.location import LineFinder, Lines
from engine.models import LOC_H, LOC_W, SEG_SIZE, CardSegmenter, LineLocator
from engine.number_decoder import NumberRead, decode_number
from engine.policy import DEFAULT_POLICY, Policy
from engine.recognition import Band, BandRecognizer, date_band, label_band, number_band
from engine.runtime import Network, evaluator, load_network, onnx_available
from engine.textlines import text_lines
from engine.textrec import CARD_ALPHABET, TextRecognizer
from engine.types import Box, CardReading, ReadOptions, TextField

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
FAST_TEXTREC = "textrec_fast.pt"  # optional: a cheaper recognizer that reads number bands first
# A photo more than twice this on its longest side is decoded at a reduction (engine/decode.py)
# that keeps at least this: the card is rectified to 856 px wide, and a photo of a card shows it
# across half its width or more.
DECODE_LONG_SIDE_FLOOR = 2 * RECT_W
LOCATE_SOURCE_SIDE = 640  # photos are shrunk to about this longest side before the small locator warps
FALLBACK_LINES = 2  # text lines read per view where the locator sees no number line


@dataclass
class _Found:
    """A number read on one view."""

    view: int
    quad: np.ndarray  # the view's outline in the photo
    card: np.ndarray  # the rectified card (portrait for a vertical card)
    H: np.ndarray  # rectified card -> photo
    lines: Lines | None
    band: Band
    read: NumberRead
    columns: int  # recognizer columns in the band


class Engine:
    def __init__(self, detector: CardDetector, finder: LineFinder, recognizer: BandRecognizer, *, fast_recognizer: BandRecognizer | None = None, policy: Policy = DEFAULT_POLICY, clock: Callable[[], datetime] | None = None):
        self.detector, self.finder, self.recognizer, self.policy = detector, finder, recognizer, policy
        self.fast_recognizer = fast_recognizer  # reads number bands first, where the weights hold one
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.ready = True

    @classmethod
    def load(cls, weights_dir: str = WEIGHTS_DIR, threads: int | None = 1, runtime: str | None = None, policy: Policy = DEFAULT_POLICY, **kw) -> "Engine":
        """The shipped networks from `weights_dir`, run by `runtime`: "onnx" (ONNX Runtime, the
        default where it is installed) or "torch"; see engine/runtime.py. `threads` is what one
        read may use, in PyTorch, ONNX Runtime and OpenCV alike (process-wide settings); None
        leaves their defaults."""
        if threads:
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)  # by default a thread per CPU: two workers on two cores ran four
        runtime = runtime or ("onnx" if onnx_available() else "torch")

        def network(net: type[torch.nn.Module], name: str, example: torch.Tensor, dynamic: dict[int, str] | None = None) -> Network:
            return evaluator(load_network(net, os.path.join(weights_dir, name)), runtime, example, dynamic)

        def band_recognizer(name: str) -> BandRecognizer:
            textrec = load_network(TextRecognizer, os.path.join(weights_dir, name))
            run = evaluator(textrec, runtime, torch.zeros(1, 3, textrec.input_height, 320), {0: "bands", 3: "width"})
            return BandRecognizer(run, CARD_ALPHABET, textrec.column_px, textrec.input_height)

        card = torch.zeros(1, 3, LOC_H, LOC_W)
        date_path = os.path.join(weights_dir, "date_locator.pt")
        return cls(
            CardDetector(network(CardSegmenter, "detector.pt", torch.zeros(1, 3, SEG_SIZE, SEG_SIZE))),
            LineFinder(network(LineLocator, "locator.pt", card), network(LineLocator, "date_locator.pt", card) if os.path.exists(date_path) else None, policy),
            band_recognizer("textrec.pt"),
            fast_recognizer=band_recognizer(FAST_TEXTREC) if os.path.exists(os.path.join(weights_dir, FAST_TEXTREC)) else None,
            policy=policy,
            **kw,
        )

    # ------------------------------------------------------------------ public

    def read(self, image: bytes | np.ndarray, options: ReadOptions = ReadOptions()) -> CardReading:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
            img = decode_image(data, max_pixels=options.max_pixels, min_side=options.min_side, long_side_floor=DECODE_LONG_SIDE_FLOOR)
            photo_size = _displayed_size(header_size(data), img)
        else:
            img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            photo_size = (img.shape[1], img.shape[0])
        timings["decode"] = _ms(t0)
        with torch.inference_mode():  # evaluation only: safe to call from several threads
            return self._read(img, photo_size, options, timings, t0)

    def read_batch(self, images, options: ReadOptions = ReadOptions()) -> list:
        out = []
        for image in images:
            try:
                out.append(self.read(image, options))
            except EngineError as exc:
                out.append(exc)
        return out

    # ------------------------------------------------------------------ composition

    def _read(self, img: np.ndarray, photo_size: tuple[int, int], options: ReadOptions, timings: dict, t0: float) -> CardReading:
        t = time.perf_counter()
        views, first_frame = self.detector.views(img)
        timings["detect"] = _ms(t)
        timings["locate"] = timings["read"] = 0.0

        found = self._number(img, views, timings)
        best = _choose(found, first_frame)
        if best is None:
            most = max((f.read.read_digits for f in found), default=0)
            if most < self.policy.min_digits_for_card:
                raise NoCardFoundError("nothing that reads like a card number")
            raise NumberUnreadableError("number not read with confidence")

        to_photo = np.float32([photo_size[0] / img.shape[1], photo_size[1] / img.shape[0]])
        t = time.perf_counter()
        fields = self._dates(best, options, to_photo) if best.lines is not None else {}
        timings["read"] = round(timings["read"] + _ms(t), 2)

        bx0, by0, bx1, by1 = best.band.columns_to_box(*best.read.columns, best.columns)
        number_box = (max(0.0, bx0), by0, min(float(best.card.shape[1]), bx1), by1)  # the band may reach past the outline
        number_quad = map_points(best.H, best.band.columns_to_quad(*best.read.columns, best.columns))
        quad = best.quad
        landscape = best.card if best.card.shape[1] >= best.card.shape[0] else cv2.rotate(best.card, cv2.ROTATE_90_CLOCKWISE)
        t = time.perf_counter()
        warnings, quality = checks.run(img, quad, landscape, options, expiry=fields.get("expiry"), now=self.clock(), is_frame=best.view >= first_frame)
        timings["checks"] = _ms(t)
        if options.blur_floor and quality is not None and quality < options.blur_floor:
            raise ImageBlurredError(f"quality {quality} below {options.blur_floor}")

        r = best.read
        x0, y0, x1, y1 = (int(round(v)) for v in number_box)
        reading = CardReading(
            number=r.digits,
            number_printed=r.printed,
            number_confidence=r.confidence,
            digit_confidences=r.digit_confidences,
            number_valid=r.valid,
            number_quad=_as_quad(number_quad * to_photo),
            number_box=_box(number_box),
            card_quad=_as_quad(quad * to_photo),
            image_size=(int(photo_size[0]), int(photo_size[1])),
            rectified_size=(best.card.shape[1], best.card.shape[0]),
            expiry=fields.get("expiry"),
            issue_date=fields.get("issue"),
            bank=bin_tables.bank_info(r.digits),
            quality=quality if options.want_quality else None,
            warnings=warnings,
            border_cut_jpeg=_jpeg(best.card) if options.want_border_cut_image else None,
            card_no_jpeg=_jpeg(best.card[y0:y1, x0:x1]) if options.want_card_no_image else None,
        )
        timings["total"] = _ms(t0)
        reading.timings_ms = timings
        return reading

    def _number(self, img: np.ndarray, views: list[np.ndarray], timings: dict) -> list[_Found]:
        """Numbers read view by view, in reading order, until one is answered. The half turn of a
        view where the locator saw the number line is not located: the locator was trained to
        see no number on an upside-down card, so that view is the card upside down."""
        small, scale = _shrink(img, LOCATE_SOURCE_SIDE)
        found: list[_Found] = []
        located: dict[int, Lines] = {}
        strongest = 0
        for i, quad in enumerate(views):
            if i % 2 and i - 1 in located:
                continue
            t = time.perf_counter()
            lines = self.finder.number_line(small, quad * scale)
            timings["locate"] += _ms(t)
            strongest = max(strongest, lines.number_cells)
            if lines.number is None or lines.number_cells < max(self.policy.min_line_cells, self.policy.weaker_line_share * strongest):
                continue
            located[i] = lines
            t = time.perf_counter()
            card, H = rectify(img, quad)
            pol = self.policy
            slope, height = (lines.number_slope, lines.number_height) if pol.number_band_follows_slope else (0.0, None)
            f = self._read_band(img, i, quad, card, H, lines, number_band(lines.number, pol.number_band_margin, slope=slope, height=height, past_edges=pol.number_band_past_edges))
            timings["read"] += _ms(t)
            if f is not None:
                found.append(f)
                if f.read.valid:
                    return found
        # Nothing answered: the text lines in the pixels, where the locator sees no number line
        # at all (every view), then for a vertical card (the first views' quarter turns).
        t = time.perf_counter()
        fallback = [(i, q, (RECT_W, RECT_H)) for i, q in enumerate(views) if not located and self.policy.text_line_fallback]
        fallback += [(0, q, (RECT_H, RECT_W)) for q in quarter_turns(views[0]) if self.policy.quarter_turn_fallback]
        for i, quad, size in fallback:
            card, H = rectify(img, quad, size)
            for box in text_lines(card)[:FALLBACK_LINES]:
                f = self._read_band(img, i, quad, card, H, None, number_band(box, self.policy.number_band_margin, size, past_edges=self.policy.number_band_past_edges))
                if f is not None:
                    found.append(f)
                    if f.read.valid:
                        timings["read"] += _ms(t)
                        return found
        timings["read"] += _ms(t)
        return found

    def _read_band(self, img: np.ndarray, view: int, quad: np.ndarray, card: np.ndarray, H: np.ndarray, lines: Lines | None, band: Band) -> _Found | None:
        """The band read by the fast recognizer first; where that reads no valid number with
        min_fast_number_confidence of the beam, by the recognizer, whose reading stands."""
        pixels, pol = band.warp(img, H), self.policy
        fast = self.fast_recognizer if pol.fast_number_reads else None
        for reader in [r for r in (fast, self.recognizer) if r is not None]:
            probs = reader.read([pixels], pol.number_band_max_aspect)[0]
            read = decode_number(probs, reader.alphabet, pol)
            if read is not None and read.valid and (reader is self.recognizer or read.confidence >= pol.min_fast_number_confidence):
                break
        return None if read is None else _Found(view, quad, card, H, lines, band, read, probs.shape[0])

    def _dates(self, best: _Found, options: ReadOptions, to_photo: np.ndarray) -> dict[str, TextField]:
        """The expiry (and the issue date, if asked for) on the chosen view, each read from a band
        tight around the located date, with its label (VALID FROM / THRU) read from the rows to
        its left; quads in the photo's pixels."""
        boxes = self.finder.dates(best.lines, want_issue=options.want_issue_date)
        if not boxes:
            return {}
        line_height = best.lines.number[3] - best.lines.number[1]
        pol = self.policy
        alphabet = self.recognizer.alphabet
        names = list(boxes)
        bands = [date_band(boxes[n], line_height, pol.date_band_margin, pol.date_band_left, pol.date_band_right, pol.date_band_min_height) for n in names]
        probs = self.recognizer(best.card, bands)
        reads = {n: read_dates(p, alphabet, pol.min_date_confidence, pol.min_date_spot_share) for n, p in zip(names, probs)}
        # The label bands in a batch of their own (with the dates they would be padded to their
        # width), and only beside a date read.
        dated = [n for n in names if reads[n]]
        lefts = [label_band(boxes[n], line_height, pol.date_band_margin, pol.date_label_left, pol.date_band_min_height) for n in dated]
        for n, left in zip(dated, self.recognizer(best.card, lefts) if lefts else []):
            reads[n] = in_context(reads[n], left, alphabet, pol.min_date_confidence)
        fields = {}
        for name, b, p in zip(names, bands, probs):
            got = pick(reads[name], name)
            if got is not None:
                box = b.columns_to_box(*got.columns, p.shape[0])
                fields[name] = TextField(text=got.text, confidence=got.confidence, quad=_as_quad(_box_quad(best.H, box) * to_photo), box=_box(box))
        return fields


def _choose(found: list[_Found], first_frame: int) -> _Found | None:
    """The answer among the views' reads: a valid number first, then the likeliest. A frame view
    reading the number an outline also read gives way to the outline (it is the card's own)."""
    answered = [f for f in found if f.read.sure]
    if not answered:
        return None
    best = max(answered, key=lambda f: (f.read.valid, f.read.confidence))
    same = [f for f in answered if f.view < first_frame and f.read.digits == best.read.digits]
    return max(same, key=lambda f: f.read.confidence) if best.view >= first_frame and same else best


# ---------------------------------------------------------------------- helpers


def _shrink(img: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Downscale by the whole factor that brings the longest side nearest to `side`, with area
    averaging, so the small warps that follow do not alias. A whole factor, because OpenCV averages
    whole blocks of pixels over ten times faster than fractional ones (0.25 ms, not 4, for 1 MP)."""
    factor = round(max(img.shape[:2]) / side)
    if factor <= 1:
        return img, 1.0
    h, w = img.shape[:2]
    return cv2.resize(img, (w // factor, h // factor), interpolation=cv2.INTER_AREA), 1.0 / factor


def _displayed_size(header: tuple[int, int], img: np.ndarray) -> tuple[int, int]:
    """The photo's (width, height) as displayed: its header's, turned as EXIF turned the pixels."""
    w, h = header
    return (w, h) if (w >= h) == (img.shape[1] >= img.shape[0]) else (h, w)


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 2)


def _box(b) -> Box:
    x0, y0, x1, y1 = b
    return Box(x=int(x0), y=int(y0), width=int(x1 - x0), height=int(y1 - y0))


def _box_quad(H: np.ndarray, b) -> np.ndarray:
    x0, y0, x1, y1 = b
    return map_points(H, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _as_quad(q: np.ndarray) -> tuple:
    """A 4x2 array -> the Quad of engine.types: four (x, y) points, rounded to 0.1 px."""
    return tuple((round(float(x), 1), round(float(y), 1)) for x, y in np.asarray(q).reshape(4, 2))


def _jpeg(img: np.ndarray) -> bytes:
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return enc.tobytes()
