"""Every text line a general OCR (RapidOCR: PP-OCRv6 small detector and recognizer, shipped in
its wheel) finds on the photos of realcards-boxes, for labelling their dates
(engine/train/real_dates.py). The photos carry only a number-line box; this reader is
independent of the engine's networks, so its boxes can teach them.

    python -m engine.train.ocr_lines --out runs/boxes_ocr.jsonl

One JSON object per photo: {"name", "lines": [{"text", "score", "quad"}]}, quads in the photo's
pixels. Written under runs/ (derived from third-party photos, never shipped).
"""
from __future__ import annotations

import argparse
import json
import logging
import os

import cv2

from engine.train.real_lines import BOXES


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=BOXES)
    ap.add_argument("--out", default="runs/boxes_ocr.jsonl")
    args = ap.parse_args(argv)
    from rapidocr import RapidOCR  # a labelling tool only: not a dependency of the engine

    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    reader = RapidOCR()
    names = sorted(os.listdir(os.path.join(args.root, "images")))
    with open(args.out, "w", encoding="utf-8") as out:
        for i, name in enumerate(names):
            img = cv2.imread(os.path.join(args.root, "images", name), cv2.IMREAD_COLOR)
            lines = []
            if img is not None:
                r = reader(img)
                if r.boxes is not None:
                    lines = [{"text": t, "score": round(float(s), 4), "quad": [[round(float(x), 1), round(float(y), 1)] for x, y in b]} for b, t, s in zip(r.boxes, r.txts, r.scores)]
            out.write(json.dumps({"name": name, "lines": lines}, ensure_ascii=False) + "\n")
            if i % 50 == 0:
                print(f"{i}/{len(names)}", flush=True)


if __name__ == "__main__":
    main()
