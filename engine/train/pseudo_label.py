"""Text labels for the real photos of realcards-boxes (number-line boxes, no text), by two
independent readers that must agree on a Luhn-valid number.

    python -m engine.train.pseudo_label --out runs/boxes_pseudo.tsv

Reader 1: the pretrained text recognizer (engine/train/import_ppocr.py, zero-shot), or a
fine-tuned one (--reader1: a second round of labels), on a wide band around the box, through
the constrained number decoder. Reader 2: the first engine's
CRNN (engine/weights/recognizer.pt, trained on synthetic lines and the real windows) on the
box itself; or, for a second round (--reader2 pretrained), the pretrained recognizer zero-shot on
a tighter band than reader 1's: once reader 1 is fine-tuned the two differ in weights and in crop,
and agree on three times as many photos as the weaker CRNN allows. A photo is labelled only where
both read the same Luhn-valid number; the label is
reader 1's text (spaces as the band shows them). Specimen numbers (8888 ...) fail Luhn and stay
out. The labels are written under runs/ (never shipped: they are derived from third-party
photos, which stay in ../shared).
"""
from __future__ import annotations

import argparse
import os

import cv2
import numpy as np
import torch

from engine.number_decoder import decode_number
from engine.preprocess import batch_bands, batch_lines, line_input, text_band_input
from engine.runtime import load_network
from bin_tables import luhn_valid
from engine.dates import greedy_text
from engine.models import ALPHABET, NumberRecognizer
from engine.train.import_ppocr import import_pretrained, source_model_path
from engine.textrec import CARD_ALPHABET, TextRecognizer

BOXES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "..", "shared", "data", "realcards-boxes")
MIN_SHARE = 0.1  # of reader 1's beam: below it the band is not a number line
WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")


def boxes(root: str = BOXES) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(image path, number-line box x0, y0, x1, y1 in pixels) for each photo with one box."""
    out = []
    for name in sorted(os.listdir(os.path.join(root, "images"))):
        label = os.path.join(root, "labels", os.path.splitext(name)[0] + ".txt")
        if not os.path.exists(label):
            continue
        rows = [r.split() for r in open(label).read().strip().splitlines() if r.strip()]
        if len(rows) != 1:
            continue
        _, cx, cy, w, h = map(float, rows[0])
        out.append((os.path.join(root, "images", name), (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return out


def band(img: np.ndarray, box, margin_x: float, margin_y: float) -> np.ndarray:
    """The box in normalised coordinates widened by margins (in box heights), in pixels."""
    H, W = img.shape[:2]
    x0, y0, x1, y1 = box[0] * W, box[1] * H, box[2] * W, box[3] * H
    h = y1 - y0
    x0, x1 = int(max(0, x0 - margin_x * h)), int(min(W, x1 + margin_x * h))
    y0, y1 = int(max(0, y0 - margin_y * h)), int(min(H, y1 + margin_y * h))
    return img[y0:y1, x0:x1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/boxes_pseudo.tsv")
    ap.add_argument("--root", default=BOXES)
    ap.add_argument("--reader1", default=None, help="text recognizer weights for reader 1 (default: the pretrained model, zero-shot)")
    ap.add_argument("--reader2", choices=("crnn", "pretrained"), default="crnn")
    args = ap.parse_args()
    torch.set_num_threads(2)
    reader1 = load_network(TextRecognizer, args.reader1) if args.reader1 else import_pretrained(source_model_path())
    if args.reader2 == "pretrained":
        if not args.reader1:
            ap.error("--reader2 pretrained needs a fine-tuned --reader1: the two must differ")
        pretrained = import_pretrained(source_model_path())

        def read2(img, box) -> str:
            d = decode_number(pretrained(batch_bands([text_band_input(band(img, box, 0.3, 0.15))]))[0].softmax(-1).numpy(), CARD_ALPHABET)
            return d.digits if d is not None else ""
    else:
        crnn = load_network(NumberRecognizer, os.path.join(WEIGHTS, "recognizer.pt"))

        def read2(img, box) -> str:
            return greedy_text(crnn(batch_lines([line_input(band(img, box, 0.3, 0.1))]))[0].softmax(-1).numpy(), ALPHABET)[0].replace(" ", "")
    kept = seen = 0
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as out, torch.inference_mode():
        out.write("file\ttext\tx0\ty0\tx1\ty1\n")
        for path, box in boxes(args.root):
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None or box[2] <= box[0] or box[3] <= box[1]:
                continue
            seen += 1
            wide = band(img, box, 1.0, 0.35)
            probs = reader1(batch_bands([text_band_input(wide)]))[0].softmax(-1).numpy()
            first = decode_number(probs, CARD_ALPHABET)
            # Reader 1's likeliest Luhn-valid number, however sure: reader 2 must read it too.
            if first is None or not luhn_valid(first.digits) or first.confidence < MIN_SHARE:
                continue
            if read2(img, box) != first.digits:
                continue
            kept += 1
            out.write(f"{os.path.relpath(path, args.root)}\t{first.printed}\t" + "\t".join(f"{v:.5f}" for v in box) + "\n")
    print(f"{kept} of {seen} photos labelled -> {args.out}")


if __name__ == "__main__":
    main()
