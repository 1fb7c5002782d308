"""Train the card segmenter that finds the card in a photo at any rotation.

    python -m engine.train.detector --seed 1 --out engine/weights/detector.pt [--iters 3000]

Data: synthetic cards warped into background photos (engine.synth.scene) at
any angle and scale, including cards that fill the frame, plus photos with no
card (target: empty mask). Target: the card's filled quadrilateral at half the
input resolution; the engine fits the four corners to it.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from engine.models import SEG_SIZE, CardSegmenter
from engine.preprocess import color_input, letterbox
from engine.synth.card import render_card
from engine.synth.scene import background_photo, degrade, photo_of_card
from engine.train.common import heatmap_args, train_heatmap_model


def make_samples(rng: np.random.Generator, tight_share: float = 0.0) -> list:
    card = render_card(rng)
    out = []
    for _ in range(3):
        if rng.random() < 0.08:  # no card at all
            w, h = int(rng.integers(400, 900)), int(rng.integers(400, 900))
            photo, quad = background_photo(rng, w, h), None
        elif rng.random() < tight_share:
            # A tight crop: the card fills a photo of nearly its own shape (how most people crop
            # a card photo, and what the vendors ask for), upright or upside down.
            long_side = int(rng.integers(440, 1000))
            size = (long_side, int(long_side / (1.586 * rng.uniform(0.92, 1.1))))
            angle = rng.normal(0, 2.5) + (180 if rng.random() < 0.25 else 0)
            photo, quad = photo_of_card(card.image, rng, size=size, angle=angle, scale=rng.uniform(0.88, 1.0))
        else:
            photo, quad = photo_of_card(card.image, rng)
        photo = degrade(photo, rng, strength=rng.uniform(0.2, 0.8))
        boxed, scale, (px, py) = letterbox(photo, SEG_SIZE)
        target = np.zeros((SEG_SIZE // 2, SEG_SIZE // 2), np.uint8)
        if quad is not None:
            q = (quad * scale + [px, py]) / 2
            cv2.fillPoly(target, [np.round(q * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
        out.append((color_input(boxed, SEG_SIZE, SEG_SIZE), target[None].astype(np.float32)))
    return out


def main(argv=None):
    ap = heatmap_args(__doc__, "engine/weights/detector.pt", 3000)
    ap.add_argument("--tight-share", type=float, default=0.0, help="share of card photos that are tight crops of the card")
    args = ap.parse_args(argv)
    vrng = np.random.default_rng(args.seed + 7)
    samples = functools.partial(make_samples, tight_share=args.tight_share)
    val = [s for _ in range(60) for s in samples(vrng)]
    train_heatmap_model(CardSegmenter(), samples, val, args, "engine.train.detector")


if __name__ == "__main__":
    main()
