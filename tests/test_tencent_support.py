"""Real-engine helpers for the Tencent and myqcloud dialect tests (no tests here).

The real engine and real card photos are optional here: `real_engine()` skips
the calling test when `engine.Engine.load()` fails (no weights yet, no torch),
and `real_cards()` when the labelled development photos are not on this
machine (CARDGATE_REALCARDS, default ../shared/data/realcards-dev). The
photos are read in place, never copied into the project.
"""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The labelled dev set lives beside the checkout; it is never copied into the project.
REALCARDS = Path(os.environ.get("CARDGATE_REALCARDS", REPO_ROOT.parent / "shared" / "data" / "realcards-dev"))
MAX_CARDS = 3


def real_engine():
    try:
        from engine import Engine

        return Engine.load()
    except Exception as exc:  # ImportError, missing weights, ...
        pytest.skip(f"real engine not available: {type(exc).__name__}: {exc}")


def real_cards(engine) -> list[tuple[bytes, str]]:
    """Up to MAX_CARDS (image bytes, labelled number) of real JPEG/BMP photos that `engine`,
    called directly, reads right: the dialect tests then check the gateway path end to end,
    while accuracy itself is measured by `cardgate eval`."""
    labels_path = REALCARDS / "labels.tsv"
    if not labels_path.is_file():
        pytest.skip(f"no real card photos at {REALCARDS}")
    with labels_path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["kind"] == "full_card"]
    found = []
    for row in rows:
        if not row["file"].lower().endswith((".jpg", ".jpeg", ".bmp")):
            continue
        image = (REALCARDS / row["file"]).read_bytes()
        try:
            if engine.read(image).number == row["card_number"]:
                found.append((image, row["card_number"]))
        except Exception:
            continue
        if len(found) == MAX_CARDS:
            break
    if not found:
        pytest.skip("the real engine reads none of the labelled photos right")
    return found


class Clock:
    """An injectable clock: the real time shifted by `offset` seconds."""

    def __init__(self, offset: float = 0.0):
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


async def public_resolver(host: str, port: int) -> list[str]:
    """Resolves every host to a public address, so URL tests reach respx, not the SSRF guard."""
    return ["93.184.216.34"]
