"""Real-engine helpers for the Tencent and myqcloud dialect tests (no tests here).

The real engine and real card photos are optional here: `real_engine()` skips
the calling test when `engine.Engine.load()` fails (no weights yet, no torch),
and `real_cards()` when the labelled development photos are not on this
machine (CARDGATE_REALCARDS, default /work/shared/data/realcards-dev). The
photos are read in place, never copied into the project.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REALCARDS = Path(os.environ.get("CARDGATE_REALCARDS", "/work/shared/data/realcards-dev"))
# Clear full-card photos (JPEG, BMP: formats both dialects take) with their labelled numbers.
SAMPLES = ("images/full/sc2019_sample_3.jpeg", "images/full/sc2019_sample_6.jpeg",
           "images/full/portumo_2015_2_4_14_28_5_94.bmp")


def real_engine():
    try:
        from engine import Engine

        return Engine.load()
    except Exception as exc:  # ImportError, missing weights, ...
        pytest.skip(f"real engine not available: {type(exc).__name__}: {exc}")


def real_cards() -> list[tuple[bytes, str]]:
    """(image bytes, labelled number) for SAMPLES."""
    labels_path = REALCARDS / "labels.tsv"
    if not labels_path.is_file():
        pytest.skip(f"no real card photos at {REALCARDS}")
    with labels_path.open(newline="", encoding="utf-8") as fh:
        labels = {row["file"]: row["card_number"] for row in csv.DictReader(fh, delimiter="\t")}
    return [((REALCARDS / name).read_bytes(), labels[name]) for name in SAMPLES if name in labels]
