"""The engine: decode -> find the card -> rectify -> locate lines -> read -> decide.

    engine = Engine.load()
    reading = engine.read(jpeg_bytes, ReadOptions())

One Engine per process; `read` is thread-safe (networks are only evaluated).
"""
from __future__ import annotations

import itertools
import os
import re
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Callable

import cv2
import numpy as np
import torch

import bin_tables
from engine import checks
from engine.decode import decode_image, header_size
from engine.decoding import DATE_MIN_VOTES, LineRead, NumberDecision, decide_number, greedy_read, merge_reads, vote_date
from engine.errors import EngineError, ImageBlurredError, NoCardFoundError, NumberUnreadableError
from engine.geometry import RECT_H, RECT_W, landscape_order, map_points, quad_from_mask, rectify, rotate_order
from engine.models import LOC_CHANNELS, LOC_H, LOC_W, REC_H, SEG_SIZE, CardSegmenter, LineLocator, NumberRecognizer
from engine.preprocess import batch_lines, color_input, letterbox, line_input, locator_input
from engine.runtime import Network, evaluator, load_network, onnx_available
from engine.textlines import text_lines
from engine.types import Box, CardReading, ReadOptions, TextField

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
NUMBER_PEAK_MIN = 0.5  # locator confidence below which there is no number line (so no card)
DATE_PEAK_MIN = 0.5
# A photo more than twice this on its longest side is decoded at a reduction (engine/decode.py)
# that keeps at least this: the card is rectified to 856 px wide, and a photo of a card shows it
# across half its width or more. A 12 MP phone photo decodes in about a quarter of the time.
DECODE_LONG_SIDE_FLOOR = 2 * RECT_W
MIN_LINE_CELLS = 12  # heatmap cells above threshold for a number line to count (heatmap is 104 x 64)
LOCATE_SOURCE_SIDE = 640  # photos are shrunk to about this longest side before the small locator warps
LINE_EXTEND_FRACTION = 0.3  # heat above this fraction of the threshold extends a line sideways
FALLBACK_LINES = 2  # lines read per view when the locator finds none: the number is the densest or next to it
MIN_DIGITS_FOR_CARD = 10  # fewer digits than this on every candidate: not a card at all
# An outline whose first crop reads fewer digits than this gets no second chance: card numbers
# have 16 to 19 digits, and on 152 check photos no second chance starting from under 16 ever
# found one (it is most of what a refused photo costs).
MIN_DIGITS_FOR_SECOND_CHANCE = 12
# Crops of a located date, read together and voted: (height, shift down, pad left, pad right),
# the height in number-line heights, the rest in crop heights (see _crop_date). The date's own
# box is too coarse to cut by: the locator's date blob is a few heatmap cells, often short of the
# first digit or pulled up by the MONTH/YEAR label; the number line, read already, gives the
# card's print size far better. The first two are read first, the rest only if those disagree
# (each date crop costs about a third of a number line's recognizer time, but on 200 synthetic
# photos nine crops read 42/46 dates with none wrong, five 39/46 with one wrong). The last two are
# taller than the number line: some cards print the date as large as the number (05/2022 on an
# older CCB card), and the crops sized for small print cut its digits in half; they also read an
# embossed 12/32 that the smaller crops read as 42/32 (dev dates 14 -> 16 of 18; on 200 synthetic
# photos 116 -> 119 of 158 right, 5 -> 4 wrong, none more invented).
DATE_CROPS = ((0.8, 0.0, 0.3, 1.0), (0.65, 0.0, 0.7, 0.7), (0.5, -0.15, 0.7, 0.7), (0.65, -0.15, 0.7, 0.7), (0.8, -0.15, 0.7, 0.7), (0.5, 0.15, 0.7, 0.7), (0.65, 0.15, 0.7, 0.7), (0.8, 0.15, 0.7, 0.7), (0.5, 0.0, 0.7, 0.7), (1.2, 0.0, 0.7, 1.0), (1.2, -0.15, 0.7, 1.0))
DATE_POOLED_VOTES = 3  # agreeing reads a date needs once both recognizers read its crops
# A date read as MM/YY whose YY could be a month (01-12) may be the tail of a date printed year
# first (2008/04, read as 08/04 from crops that start at the located box): this crop, with room
# for two more digits on the left, is read once more to tell (see _year_first).
YEAR_FIRST_CROP = (0.8, 0.0, 1.5, 1.0)
# Where no date crop reads a located date, the text line nearest its box is looked for in a window
# around it (left, up, right, down of the box, in number-line heights; see _date_line) and cut
# by its own height: (pad up and down, pad sideways) in line heights.
DATE_WINDOW = (3.0, 0.6, 1.0, 1.2)
DATE_LINE_CROPS = ((0.3, 0.5), (0.15, 0.8), (0.4, 0.3))
MIN_VOTES = 2  # a number found only on a second chance must be read so by two crops
# ... and by at least one of them with no more unsure digits than this. At 2, on 800 synthetic
# photos, crops agreed on three wrong but Luhn-valid numbers, each with two unsure digits (Luhn
# passes two wrong digits one time in ten); at 1, two of those were refused, and so were 3 right
# reads of the 652.
MAX_UNSURE_VOTED = 1
# Crops of a number line (shrink the located box by this fraction of its height on each side, then
# pad vertically, pad horizontally, both in box heights; see _crop_line). The first is read alone;
# the others are the second chance's first pass, in two batches (SECOND_CHANCE_PASSES). The last two are wide:
# the located line often misses digits at its ends (glare, artwork, a flat-printed number the
# locator only half sees); the second runs across the whole card.
CROP_VARIANTS = ((0.0, 0.0, 0.5), (0.15, 0.2, 0.4), (0.1, 0.1, 0.8), (0.05, 0.0, 0.3), (0.2, 0.3, 0.6), (0.05, 0.1, 2.0), (0.05, 0.1, 30.0))
# The located box is sometimes two lines tall: small print or a stamp just below the number heats
# the locator too, and a crop of both lines reads as neither. These crops are cut around the band
# of the box where vertical strokes are densest (_text_band), which is the number's own height.
BAND_VARIANTS = ((0.0, 0.1, 0.5), (0.0, 0.3, 0.5))
# The second chance, in passes; each pass goes over every outline before the next pass starts.
# A pass is batches of (cut around the text band?, crop variants). The close crops first: they
# settle most lines, and the wide ones cost the most recognizer time. The band crops come last,
# after every outline's usual crops, so a photo those read keeps the outline they read it on.
SECOND_CHANCE_PASSES = (
    ((False, CROP_VARIANTS[1:4]), (False, CROP_VARIANTS[4:])),
    ((True, BAND_VARIANTS),),
)


class Engine:
    def __init__(self, segmenter: Network, locator: Network, recognizer: Network, *, fast_recognizer: Network | None = None, date_locator: Network | None = None, clock: Callable[[], datetime] | None = None):
        self.segmenter, self.locator, self.recognizer = segmenter, locator, recognizer
        # The fast recognizer (a narrower net without the GRU, ~2x faster) reads the first
        # view's number crop, which settles most photos, and joins the CRNN on hard dates.
        self.fast_recognizer = fast_recognizer or recognizer
        self.date_locator = date_locator
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.ready = True

    @classmethod
    def load(cls, weights_dir: str = WEIGHTS_DIR, threads: int | None = 1, runtime: str | None = None, **kw) -> "Engine":
        """The shipped networks from `weights_dir`, run by `runtime`: "onnx" (ONNX Runtime, the
        default where it is installed) or "torch"; see engine/runtime.py. `threads` is what one
        read may use, in PyTorch, ONNX Runtime and OpenCV alike (process-wide settings); None
        leaves their defaults."""
        if threads:
            torch.set_num_threads(threads)
            # OpenCV's resizes and warps too: by default it runs a thread per CPU, so two gateway
            # workers on two cores ran four; with one each, 21.6 -> 22.7-23.1 req/s and server
            # overhead p95 7.2-8.0 -> 5.4 ms on the 2-core machine (same sitting, interleaved).
            cv2.setNumThreads(threads)
        runtime = runtime or ("onnx" if onnx_available() else "torch")

        def network(net: type[torch.nn.Module], name: str, example: torch.Tensor, dynamic: dict[int, str] | None = None) -> Network:
            return evaluator(load_network(net, os.path.join(weights_dir, name)), runtime, example, dynamic)

        card, line = torch.zeros(1, 3, LOC_H, LOC_W), torch.zeros(1, 1, REC_H, 4 * REC_H)
        lines = {0: "lines", 3: "width"}  # a batch of line crops, as wide as the widest
        if os.path.exists(os.path.join(weights_dir, "date_locator.pt")):  # optional: dates where the locator sees none
            kw.setdefault("date_locator", network(LineLocator, "date_locator.pt", card))
        if os.path.exists(os.path.join(weights_dir, "recognizer_fast.pt")):  # optional: first reads and dates
            kw.setdefault("fast_recognizer", network(NumberRecognizer, "recognizer_fast.pt", line, lines))
        return cls(
            network(CardSegmenter, "detector.pt", torch.zeros(1, 3, SEG_SIZE, SEG_SIZE)),
            network(LineLocator, "locator.pt", card),
            network(NumberRecognizer, "recognizer.pt", line, lines),
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

    def _candidates(self, img: np.ndarray) -> tuple[list[np.ndarray], int]:
        """Outlines to try, each with its half turn; returns (quads, index of the first frame quad)."""
        h, w = img.shape[:2]
        frame = landscape_order(np.float32([[0, 0], [w, 0], [w, h], [0, h]]))
        quad, _ = self.find_card(img)
        cands = []
        # The card may fill the whole photo (vendors recommend 2/3 or more): the frame is always
        # a candidate, unless the segmenter already found (nearly) the frame.
        if quad is not None and np.abs(quad - frame).max() > 0.03 * max(h, w) and np.abs(quad - rotate_order(frame, 1)).max() > 0.03 * max(h, w):
            cands += [quad, rotate_order(quad, 1)]
        first_frame = len(cands)
        cands += [frame, rotate_order(frame, 1)]
        return cands, first_frame

    def _read(self, img: np.ndarray, photo_size: tuple[int, int], options: ReadOptions, timings: dict, t0: float) -> CardReading:
        """Read a decoded photo; `photo_size` is the photo's own (width, height), which a large
        photo decoded at a reduction exceeds: every point reported is scaled back to it."""
        to_photo = np.float32([photo_size[0] / img.shape[1], photo_size[1] / img.shape[0]])
        t = time.perf_counter()
        cands, first_frame = self._candidates(img)
        timings["detect"] = _ms(t)

        # Locate and read view by view: the segmenter's outline one way up, then turned over,
        # then the whole frame both ways; stop at the first "sure" read (Luhn/BIN-valid with at
        # most one unsure digit). The locator was trained to see no number on an upside-down
        # card, so a card the right way up in the first view costs one small locator pass, and
        # the half turn of a view where it found the number line is not located at all: it is
        # the card upside down (on 152 check photos, skipping it changed no read and saved a
        # third of the locator passes on the real photos).
        small, scale = _shrink(img, LOCATE_SOURCE_SIDE)
        heat = np.zeros((len(cands), len(LOC_CHANNELS), LOC_H // 2, LOC_W // 2), np.float32)
        mass = np.zeros(len(cands), np.int64)
        loc_inputs, cards, boxes, first, first_reads, decisions, crops, reads, kept = {}, {}, {}, {}, {}, {}, {}, [], []
        timings["locate"] = timings["read"] = 0.0
        sure = lambda d: d is not None and d.valid and d.unsure_digits <= 1
        for i, quad in enumerate(cands):
            if i % 2 and i - 1 in cards:  # views come in pairs: an outline, then its half turn
                continue
            t = time.perf_counter()
            loc_inputs[i] = torch.from_numpy(locator_input(rectify(small, quad * scale, (LOC_W, LOC_H))[0])[None])
            heat[i] = self.locator(loc_inputs[i]).sigmoid().numpy()[0]
            mass[i] = (heat[i, 0] > 0.5).sum()
            timings["locate"] += _ms(t)
            if mass[i] < max(MIN_LINE_CELLS, 0.25 * mass.max()):
                continue  # no number line here, or a much weaker one than another view's

            t = time.perf_counter()
            cards[i] = rectify(img, quad)  # full resolution, only where we read
            boxes[i] = _line_box(heat[i, 0], NUMBER_PEAK_MIN)
            first[i] = _crop_line(cards[i][0], boxes[i], *CROP_VARIANTS[0])
            # The fast recognizer reads the first view's crop. Its read stands only when it is
            # valid as read with every digit sure: the small net is sometimes confidently wrong
            # where the CRNN is not (on synthetic photos, a 19-digit number read without its
            # unsure last digit as a valid 18-digit one). Otherwise the CRNN reads that crop again,
            # and every later view, and the search goes on from the CRNN's reads. A photo the
            # fast net cannot settle is a hard one: asking it again on other views costs more
            # than it finds. A fast read of fewer than MIN_DIGITS_FOR_SECOND_CHANCE digits is
            # not read again: mostly no card at all (on 152 check photos the CRNN's read of such
            # a crop never changed an answer, only one refusal's reason).
            net = self.fast_recognizer if not kept else self.recognizer
            line = _line_batch([first[i][0]])
            first_reads[i] = _recognize(line, net)[0]
            d = decide_number(first_reads[i])
            settled = sure(d) and d.unsure_digits == 0 and not d.luhn_corrected
            if net is not self.recognizer and not settled and _digits(first_reads[i]) >= MIN_DIGITS_FOR_SECOND_CHANCE:
                first_reads[i] = _recognize(line, self.recognizer)[0]
                d = decide_number(first_reads[i])
            reads.append(first_reads[i])
            kept.append(i)
            if d is not None:
                decisions[i], crops[i] = d, first[i]
            timings["read"] += _ms(t)
            if sure(d):
                break
        if not kept:
            # The locator saw no number line on any view (on the dev photos, once: a flat black
            # serif number on a pale pattern, level with the chip): look for it in the pixels.
            t = time.perf_counter()
            found = self._number_from_text_lines(img, cands, cards, reads)
            if found is not None:
                i, box, crop, read, d = found
                boxes[i], first[i], first_reads[i], decisions[i], crops[i] = box, crop, read, d, crop
                kept.append(i)
            timings["read"] += _ms(t)
        if not kept:
            raise NoCardFoundError("no card number line found")

        t = time.perf_counter()
        if not any(sure(d) for d in decisions.values()):
            # Second chance, pass by pass, outline by outline in reading order: the first one
            # whose crops agree on a valid number ends the search.
            todo = [i for i in kept if not sure(decisions.get(i)) and _digits(first_reads[i]) >= MIN_DIGITS_FOR_SECOND_CHANCE]
            first_decisions = {i: decisions.pop(i, None) for i in todo}
            line_reads = {i: [first_reads[i]] for i in todo}
            votes = {i: [first_decisions[i]] for i in todo}
            for batches, i in itertools.product(SECOND_CHANCE_PASSES, todo):  # every outline, pass by pass
                elsewhere = [d for j, d in decisions.items() if j != i]  # other outlines' voted numbers
                d = self._second_chance(cards[i][0], boxes[i], batches, line_reads[i], votes[i], reads, elsewhere)
                if d is not None:
                    decisions[i], crops[i] = d, first[i]
                    if d.valid:
                        break
        decided = list(decisions)
        timings["read"] += _ms(t)
        if not decided:
            if max(_digits(r) for r in reads) < MIN_DIGITS_FOR_CARD:
                raise NoCardFoundError("nothing that reads like a card number")
            raise NumberUnreadableError("number not read with confidence")
        best = max(decided, key=lambda i: (decisions[i].valid, decisions[i].confidence))
        same = [i for i in decided if i < first_frame and decisions[i].digits == decisions[best].digits]
        if best >= first_frame and same:  # the frame is the fallback: keep the card's own outline
            best = max(same, key=lambda i: decisions[i].confidence)
        decision = decisions[best]
        card, H = cards[best]
        quad = cands[best]
        number_box = crops[best][1]
        number_quad = _box_quad(H, number_box)
        if best >= first_frame and first_frame:
            # Read through the whole frame, but the segmenter did find a card around the
            # number: that is the outline to report, turned the way the frame read it.
            own = min(range(first_frame), key=lambda k: np.linalg.norm(cands[k] - quad, axis=1).sum())
            if all(cv2.pointPolygonTest(cands[own].reshape(-1, 1, 2), (float(x), float(y)), False) >= 0 for x, y in number_quad):
                quad = cands[own]

        t = time.perf_counter()
        date_boxes, date_heat, date_locate_ms = {}, None, 0.0
        for c, name in enumerate(LOC_CHANNELS):
            if name == "expiry" or (name == "issue" and options.want_issue_date):
                box = _line_box(heat[best, c], DATE_PEAK_MIN)
                if box is None and self.date_locator is not None:
                    # The locator's date channels share its number channel's features, and a
                    # fine-tune for dates moves the number line (see engine/README.md). The date
                    # locator is that fine-tune, asked only where the locator sees no date.
                    if date_heat is None:
                        t_date = time.perf_counter()
                        date_heat = self.date_locator(loc_inputs[best]).sigmoid().numpy()[0]
                        date_locate_ms = _ms(t_date)
                    box = _line_box(date_heat[c], DATE_PEAK_MIN)
                if box is not None:
                    date_boxes[name] = box
        # Two crops of each date first; only a date they do not agree on gets the other crops.
        date_reads: dict[str, list[LineRead]] = {name: [] for name in date_boxes}
        line_height = boxes[best][3] - boxes[best][1]
        dates: dict[str, tuple[str, float] | None] = {}
        # The CRNN reads the first two crops; crops read when those disagree are read by both
        # recognizers, and then a date needs DATE_POOLED_VOTES agreeing reads. The fast net
        # reads some small embossed dates the CRNN misreads ("12" as "42"), but alone it is
        # sometimes surely wrong; with the CRNN's reads in the same vote it is not.
        both = tuple(dict.fromkeys((self.recognizer, self.fast_recognizer)))  # each recognizer once
        for pooled, variants in ((False, DATE_CROPS[:2]), (True, DATE_CROPS[2:])):
            names = [n for n in date_boxes if dates.get(n) is None]
            crops_now = [(n, _crop_date(card, date_boxes[n], line_height, *v)[0]) for n in names for v in variants]
            if not crops_now:
                break
            nets = both if pooled else (self.recognizer,)
            lines = _line_batch([c for _, c in crops_now])
            for net in nets:
                for (n, _), r in zip(crops_now, _recognize(lines, net)):
                    date_reads[n].append(r)
            votes = DATE_POOLED_VOTES if len(nets) > 1 else DATE_MIN_VOTES
            dates.update({n: vote_date(date_reads[n], min_votes=votes) for n in names})
        # A located date that none of those crops read may lie off the located box: the box
        # pulled up onto a MONTH/YEAR head, or short of the first digits. The text line under
        # the box, found in the pixels (engine/textlines.py), is cut by its own size and read by
        # both recognizers, into the same vote.
        for n in [n for n in date_boxes if dates.get(n) is None]:
            found = _date_line(card, date_boxes[n], line_height)
            if found is None:
                continue
            lines = _line_batch([_crop_line(card, found, 0.0, pad_y, pad_x)[0] for pad_y, pad_x in DATE_LINE_CROPS])
            for net in both:
                date_reads[n] += _recognize(lines, net)
            dates[n] = vote_date(date_reads[n], min_votes=DATE_POOLED_VOTES)
            if dates[n] is not None:
                date_boxes[n] = found
        for n, got in dates.items():
            if got and self._year_first(got[0], _crop_date(card, date_boxes[n], line_height, *YEAR_FIRST_CROP)[0]):
                dates[n] = None  # not an MM/YY date: no answer rather than a wrong one
        timings["read"] = round(timings["read"] + _ms(t) - date_locate_ms, 2)
        timings["locate"] = round(timings["locate"] + date_locate_ms, 2)

        now = self.clock()
        fields = {}
        for name, box in date_boxes.items():
            got = dates[name]
            if got:
                box = _crop_date(card, box, line_height, *DATE_CROPS[0])[1]
                fields[name] = TextField(text=got[0], confidence=got[1], quad=_as_quad(_box_quad(H, box) * to_photo), box=_box(box))

        t = time.perf_counter()
        warnings, quality = checks.run(img, quad, card, options, expiry=fields.get("expiry"), now=now, is_frame=best >= first_frame)
        timings["checks"] = _ms(t)
        if options.blur_floor and quality is not None and quality < options.blur_floor:
            raise ImageBlurredError(f"quality {quality} below {options.blur_floor}")

        reading = CardReading(
            number=decision.digits,
            number_printed=decision.printed,
            number_confidence=decision.confidence,
            digit_confidences=decision.digit_confidences,
            number_valid=decision.valid,
            number_quad=_as_quad(number_quad * to_photo),
            number_box=_box(number_box),
            card_quad=_as_quad(quad * to_photo),
            image_size=(int(photo_size[0]), int(photo_size[1])),
            rectified_size=(RECT_W, RECT_H),
            expiry=fields.get("expiry"),
            issue_date=fields.get("issue"),
            bank=bin_tables.bank_info(decision.digits),
            quality=quality if options.want_quality else None,
            warnings=warnings,
            border_cut_jpeg=_jpeg(card) if options.want_border_cut_image else None,
            card_no_jpeg=_jpeg(crops[best][0]) if options.want_card_no_image else None,
        )
        timings["total"] = _ms(t0)
        reading.timings_ms = timings
        return reading


    def _number_from_text_lines(self, img: np.ndarray, cands: list, cards: dict, reads: list[LineRead]):
        """(view, box, crop, read, decision) of a card number found in text lines of the views'
        own pixels (engine/textlines.py), or None. View by view, the densest FALLBACK_LINES lines
        are read; one that reads like a card number is read from three more crops and voted on (a
        box found this way is looser than the locator's, and one crop of it often takes in a
        chip edge or the card's edge as a digit). `cards` (the rectified views) and `reads` are
        extended in place."""
        for i, quad in enumerate(cands):
            if i not in cards:
                cards[i] = rectify(img, quad)
            card = cards[i][0]
            for box in text_lines(card)[:FALLBACK_LINES]:
                crop = _crop_line(card, box, *CROP_VARIANTS[0])
                read = _recognize(_line_batch([crop[0]]), self.recognizer)[0]
                reads.append(read)
                if _digits(read) < MIN_DIGITS_FOR_SECOND_CHANCE:
                    continue
                more = _recognize(_line_batch([_crop_line(card, box, *v)[0] for v in CROP_VARIANTS[1:4]]), self.recognizer)
                reads += more
                d = _vote([d for d in map(decide_number, [read, *more]) if d is not None])
                if d is not None and d.valid:
                    return i, box, crop, read, d
        return None

    def _year_first(self, date: str, wide_crop: np.ndarray) -> bool:
        """Whether `date` (MM/YY) was read off a date printed year first: its YY is a month and
        the crop with room on the left reads 19 or 20 right before it (2008/04)."""
        if int(date[3:]) > 12:
            return False
        text = _recognize(_line_batch([wide_crop]), self.recognizer)[0].text.replace(" ", "")
        return re.search(f"(19|20){date}", text) is not None

    def _second_chance(self, card: np.ndarray, box, batches, line_reads: list[LineRead], votes: list, reads: list[LineRead], elsewhere: list[NumberDecision]) -> NumberDecision | None:
        """More crops of one outline's number line, batch by batch, merged with its earlier reads
        (`line_reads`, `votes`: extended in place, as is the photo's `reads`) and voted after each
        batch; stops at a valid number. `elsewhere` holds what the photo's other outlines
        decided: a lone read must not contradict them."""
        decision = None
        for in_band, variants in batches:
            cut = _text_band(card, box) if in_band else box
            more = _recognize(_line_batch([_crop_line(card, cut, *v)[0] for v in variants]), self.recognizer)
            reads += more
            line_reads += more
            votes += [decide_number(r) for r in more]
            merged = merge_reads(line_reads)
            voted = _vote([v for v in votes + [decide_number(merged) if merged is not None else None] if v is not None], elsewhere)
            if voted is not None and _shorter_than_most(voted, line_reads):
                voted = None
            if voted is not None:
                decision = voted
                if voted.valid:
                    break
        return decision



# ---------------------------------------------------------------------- helpers


def _shorter_than_most(decision: NumberDecision, reads: list[LineRead]) -> bool:
    """Whether most of a line's reads that look like a number hold more digits than `decision`:
    then it dropped one. Crops cut at the located box often lose a digit at an end, which the
    wide crops read, so a number longer than most reads is believable; a shorter one is not (on a
    synthetic 19-digit card two wide crops read 18 digits that passed Luhn, five close crops 19)."""
    counts = Counter(n for n in map(_digits, reads) if n >= MIN_DIGITS_FOR_SECOND_CHANCE)
    return bool(counts) and max(counts, key=lambda n: (counts[n], n)) > len(decision.digits)


def _line_batch(crops: list[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
    """Line crops -> one recognizer batch and each line's own number of output columns. Built
    once, whichever recognizers then read it."""
    inputs = [line_input(c) for c in crops]
    return batch_lines(inputs), [x.shape[1] // 4 for x in inputs]


def _recognize(lines: tuple[torch.Tensor, list[int]], recognizer: Network) -> list[LineRead]:
    """Read a batch from _line_batch with one recognizer."""
    batch, columns = lines
    probs = recognizer(batch).softmax(-1).numpy()
    return [greedy_read(probs[i, :n]) for i, n in enumerate(columns)]


def _vote(decisions: list[NumberDecision], elsewhere: list[NumberDecision] = ()) -> NumberDecision | None:
    """The valid number that at least two crops agree on, clearly ahead of any other valid
    number, read fairly surely at least once and once without Luhn's help, or that the only crop
    reading a valid number read with every digit sure, when no other outline (`elsewhere`)
    decided another number; else, with no valid number at all, the surest invalid one that
    two crops read alike. Otherwise None."""
    valid = [d for d in decisions if d.valid]
    if not valid:
        # An illegal card is a strong claim (one misread digit also fails Luhn): the same
        # number must come from at least two crops.
        invalid = [d for d in decisions if sum(e.digits == d.digits for e in decisions) >= MIN_VOTES]
        return max(invalid, key=lambda d: d.confidence) if invalid else None
    support: dict[str, int] = {}
    for d in valid:
        support[d.digits] = support.get(d.digits, 0) + 1
    ranked = sorted(support.values(), reverse=True)
    best = max(valid, key=lambda d: (support[d.digits], d.confidence))
    if len(ranked) == 1 and ranked[0] == 1 and best.unsure_digits == 0 and all(d.digits == best.digits for d in elsewhere):
        # One crop read every digit surely (often the wide one), no other crop reads another valid
        # number, and no other outline's crops agreed on another number, not even a Luhn-failing
        # one: that is what the crops of an illegal card read while one misreads two digits into
        # a valid number.
        return best
    if ranked[0] < MIN_VOTES or (len(ranked) > 1 and ranked[1] >= ranked[0] - 1):
        return None  # a lone unsure read, or two numbers the crops cannot tell apart
    # Luhn picks among a digit's alternatives, so crops that share a misread (an extra digit, a
    # digit read as another) can agree on the same "corrected" valid number: one crop at least
    # must have read it as it is.
    if all(d.luhn_corrected for d in valid if d.digits == best.digits):
        return None
    # Crops of one photo share its blur and glare, so they often repeat the same misread:
    # agreement alone is not enough when every read of the number is unsure in several places.
    if min(d.unsure_digits for d in valid if d.digits == best.digits) > MAX_UNSURE_VOTED:
        return None
    return best


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


def _digits(read: LineRead) -> int:
    return sum(ch.isdigit() for ch in read.text)


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 2)


def _line_box(heat: np.ndarray, thresh: float) -> tuple[float, float, float, float] | None:
    """Box (rectified-card pixels) of the text line under a heatmap channel's strongest blob.

    A line often breaks into several blobs (gaps between digit groups, glare):
    every blob whose centre lies in the strongest blob's band belongs to it,
    and weaker heat in that band extends it sideways.
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
    # Hysteresis along the line: the ends often fade (glare, logos, a different font size);
    # weaker heat in the same band still extends the line sideways, never up or down.
    band = heat[y0:y1] > thresh * LINE_EXTEND_FRACTION
    cols = np.flatnonzero(band.any(0))
    if len(cols):
        runs = np.split(cols, np.flatnonzero(np.diff(cols) > 2) + 1)
        for run in runs:
            if run[0] <= x1 and run[-1] + 1 >= x0:  # the run touches the line
                x0, x1 = min(x0, int(run[0])), max(x1, int(run[-1]) + 1)
    x, y, w, h = x0, y0, x1 - x0, y1 - y0
    sx, sy = RECT_W / heat.shape[1], RECT_H / heat.shape[0]
    return x * sx, y * sy, (x + w) * sx, (y + h) * sy


def _date_line(card: np.ndarray, box, line_height: float) -> tuple[int, int, int, int] | None:
    """The text line nearest a located date box, found in the pixels of a window around it (a
    few number-line heights to the left, where dates begin, and one below, where the line under
    a MONTH/YEAR head lies), in rectified-card pixels; it must overlap the box sideways."""
    x0, y0 = int(max(0, box[0] - DATE_WINDOW[0] * line_height)), int(max(0, box[1] - DATE_WINDOW[1] * line_height))
    x1, y1 = int(min(RECT_W, box[2] + DATE_WINDOW[2] * line_height)), int(min(RECT_H, box[3] + DATE_WINDOW[3] * line_height))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    found = [(u0 + x0, v0 + y0, u1 + x0, v1 + y0) for u0, v0, u1, v1 in text_lines(card[y0:y1, x0:x1], min_width=0.75 * line_height, min_aspect=2.0, heights=(0.3 * line_height, 1.5 * line_height))]
    found = [b for b in found if b[0] < box[2] and b[2] > box[0]]
    if not found:
        return None
    cy = (box[1] + box[3]) / 2
    return min(found, key=lambda b: abs((b[1] + b[3]) / 2 - cy))


def _crop_line(card: np.ndarray, box, shrink: float = 0.0, pad_y: float = 0.1, pad_x: float = 0.4) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Cut a located line out of the rectified card, with margins like the recognizer saw in
    training. All margins are in box heights."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    y0, y1 = y0 + shrink * h, y1 - shrink * h
    h = y1 - y0
    x0, x1 = max(0, int(x0 - pad_x * h)), min(RECT_W, int(x1 + pad_x * h))
    y0, y1 = max(0, int(y0 - pad_y * h)), min(RECT_H, int(y1 + pad_y * h))
    return card[y0:y1, x0:x1], (x0, y0, x1, y1)


def _text_band(card: np.ndarray, box, margin: float = 0.3, keep: float = 0.5) -> tuple[int, int, int, int]:
    """The located line's box narrowed (or, by up to `margin` box heights, widened) vertically to
    the band of rows where vertical strokes are densest: a row of digits has them all along the
    line, a stamp or small print beside the number only in part of it. The band is the rows
    around the densest one whose density is at least `keep` of it."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h = y1 - y0
    top, bottom = max(0, int(y0 - margin * h)), min(card.shape[0], int(y1 + margin * h))
    if x1 - x0 < 2 or bottom - top < 3:
        return x0, y0, x1, y1
    gray = cv2.cvtColor(card[top:bottom, x0:x1], cv2.COLOR_BGR2GRAY)
    strokes = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3))
    density = (strokes > np.percentile(strokes, 90)).mean(1)
    k = max(3, h // 8) | 1
    density = np.convolve(density, np.ones(k) / k, mode="same")
    peak = int(np.argmax(density))
    lo = hi = peak
    while lo > 0 and density[lo - 1] >= keep * density[peak]:
        lo -= 1
    while hi < len(density) - 1 and density[hi + 1] >= keep * density[peak]:
        hi += 1
    return x0, top + lo, x1, top + hi + 1


def _crop_date(card: np.ndarray, box, line_height: float, height: float, shift: float, pad_left: float, pad_right: float) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Cut a date out of the rectified card: `height` number-line heights tall, centred on the
    located date's middle moved down by `shift` crop heights, padded sideways in crop heights."""
    h = max(4.0, line_height * height)
    cy = (box[1] + box[3]) / 2 + shift * h
    x0, x1 = max(0, int(box[0] - pad_left * h)), min(RECT_W, int(box[2] + pad_right * h))
    y0, y1 = max(0, int(cy - h / 2)), min(RECT_H, int(cy + h / 2))
    return card[y0:y1, x0:x1], (x0, y0, x1, y1)


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
