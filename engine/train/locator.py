"""Train the line locator: on a rectified card, where are the number line, expiry and issue date.

    python -m engine.train.locator --seed 1 --out engine/weights/locator.pt [--iters 3000] [--real-share 0.5 [--real-dates runs/boxes_ocr.jsonl]]

Data: synthetic cards, degraded, warped with the corner error a real detector
makes. Upside-down cards are shown with empty targets, so the number heatmap's
peak also tells the engine which way up the card is. With --real-share, that share of the
samples are real photos of ../shared/data/realcards-boxes with their number-line boxes
(engine/train/real_lines.py), one photo in ten held out to validate; their dates are unlabelled,
or with --real-dates labelled from a general OCR's lines (engine/train/ocr_lines.py, real_dates.py).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from engine.models import LOC_CHANNELS, LOC_H, LOC_W, LineLocator
from engine.preprocess import color_input
from engine.synth.card import CARD_H, CARD_W, render_card
from engine.synth.scene import background_photo, degrade
from engine.train.common import heat_iou, heatmap_args, train_heatmap_model
from engine.train import real_dates
from engine.train.real_lines import held_out, real_sample, real_views


def make_samples(rng: np.random.Generator, loose_share: float = 0.0, flip_share: float = 0.2, varied_dates: float = 0.0) -> list:
    card = render_card(rng, varied_dates=varied_dates > 0 and rng.random() < varied_dates)  # no draw at 0: older stages replay
    base = degrade(card.image, rng, strength=rng.uniform(0.2, 0.9))
    fields = {"number": card.number, "expiry": card.expiry, "issue": card.issue}
    # The card on a table-like background with a margin around it: when the engine reads the
    # whole photo of a tight crop, or a loose outline, the view shows some background too.
    margin = int(0.15 * CARD_W)
    canvas = background_photo(rng, CARD_W + 2 * margin, CARD_H + 2 * margin)
    canvas[margin : margin + CARD_H, margin : margin + CARD_W] = base
    out = []
    for _ in range(2):
        src = np.float32([[0, 0], [CARD_W, 0], [CARD_W, CARD_H], [0, CARD_H]]) + margin
        err = rng.normal(0, 0.025, (4, 2)) * [CARD_W, CARD_H]
        if rng.random() < loose_share:  # an outline up to 12% outside the card on each side
            err += np.float32([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * rng.uniform(0, 0.12, (4, 2)) * [CARD_W, CARD_H]
        M = cv2.getPerspectiveTransform((src + err).astype(np.float32), np.float32([[0, 0], [LOC_W, 0], [LOC_W, LOC_H], [0, LOC_H]]))
        img = cv2.warpPerspective(canvas, M, (LOC_W, LOC_H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        M = M @ np.float64([[1, 0, margin], [0, 1, margin], [0, 0, 1]])  # card pixels -> view
        target = np.zeros((len(LOC_CHANNELS), LOC_H // 2, LOC_W // 2), np.float32)
        flipped = rng.random() < flip_share
        if not flipped:
            for c, name in enumerate(LOC_CHANNELS):
                field = fields[name]
                if field is None:
                    continue
                x0, y0, x1, y1 = field.box
                pts = cv2.perspectiveTransform(np.float32([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]), M)[0] / 2
                cv2.fillPoly(target[c], [np.round(pts * 4).astype(np.int32)], 1.0, shift=2)
        else:
            img = img[::-1, ::-1].copy()
        out.append((color_input(img, LOC_H, LOC_W), target))
    return out


def mixed_samples(rng: np.random.Generator, real: list, real_share: float, flip_share: float, **synthetic) -> list:
    """Two views of one synthetic card, or, at `real_share`, two real views."""
    if real and rng.random() < real_share:
        return [real_sample(rng, real[rng.integers(len(real))], flip_share) for _ in range(2)]
    return make_samples(rng, flip_share=flip_share, **synthetic)


def channel_iou(model, samples: list, channel: str = "number") -> float:
    """One channel's IoU over `samples`, where their targets know it."""
    import torch

    c = LOC_CHANNELS.index(channel)
    x = torch.from_numpy(np.stack([s[0] for s in samples]))
    y = torch.from_numpy(np.stack([s[1][c : c + 1] for s in samples]))
    with torch.no_grad():
        return round(heat_iou(model(x)[:, c : c + 1], y), 4)


def main(argv=None):
    ap = heatmap_args(__doc__, "engine/weights/locator.pt", 3000)
    ap.add_argument("--loose-share", type=float, default=0.0, help="share of views whose outline takes in background")
    ap.add_argument("--flip-share", type=float, default=0.2, help="share of upside-down views (empty targets)")
    ap.add_argument("--varied-dates", type=float, default=0.0, help="share of cards whose date block is drawn as real cards print it (render_card's varied_dates)")
    ap.add_argument("--real-share", type=float, default=0.0, help="share of samples from the real photos of realcards-boxes")
    ap.add_argument("--real-dates", default=None, help="their OCR lines (engine.train.ocr_lines), to label their dates")
    args = ap.parse_args(argv)
    dates = real_dates.load(args.real_dates) if args.real_dates else None
    real = real_views(dates=dates) if args.real_share > 0 else []
    train_real = [v for v in real if not held_out(v.name)]
    samples = functools.partial(mixed_samples, real=train_real, real_share=args.real_share, flip_share=args.flip_share, loose_share=args.loose_share, varied_dates=args.varied_dates)
    vrng = np.random.default_rng(args.seed + 7)
    val = [s for _ in range(80) for s in make_samples(vrng, loose_share=args.loose_share, flip_share=args.flip_share, varied_dates=args.varied_dates)]
    real_val = [real_sample(vrng, v, flip_share=0.0) for v in real if held_out(v.name)]
    if real:
        print(f"real views: {len(train_real)} to train, {len(real_val)} held out", flush=True)
    dated_val = [s for s in real_val if (s[1][LOC_CHANNELS.index("expiry")] > 0).any()]

    def extra(model) -> dict:
        out = {"real_number_iou": channel_iou(model, real_val), "synthetic_number_iou": channel_iou(model, val)}
        if dated_val:
            out |= {"real_expiry_iou": channel_iou(model, dated_val, "expiry"), "synthetic_expiry_iou": channel_iou(model, val, "expiry")}
        return out

    if dated_val:
        print(f"held-out real views with an expiry: {len(dated_val)}", flush=True)
    train_heatmap_model(LineLocator(), samples, val + real_val, args, "engine.train.locator", extra_val=extra if real_val else None)


if __name__ == "__main__":
    main()
