"""Test doubles shared by the Huawei and Face++ dialect tests (no tests here).

`CheckingEngine` is tests.fakes.FakeEngine plus the input checks the real
engine makes: it decodes the bytes (so a truncated JPEG or a non-image fails
with ImageDecodeError) and applies the caller's ReadOptions size limits. The
reading itself is FakeEngine's canned card.

`real_engine_and_card()` loads engine.Engine and finds a labelled real card it
reads correctly, or skips the calling test.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np

from engine.errors import ImageDecodeError, ImageTooLargeError, ImageTooSmallError
from engine.types import CardReading, ReadOptions
from tests.fakes import FakeEngine


def photo(width: int = 480, height: int = 300, ext: str = ".jpg") -> bytes:
    """A real encoded image (a smooth gradient with some texture) of the given size."""
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([(xs * 255 // max(width, 1)), (ys * 255 // max(height, 1)), ((xs + ys) % 64) * 4], axis=-1)
    ok, encoded = cv2.imencode(ext, image.astype(np.uint8))
    assert ok
    return encoded.tobytes()


def truncated_jpeg() -> bytes:
    """The first 60 % of a real JPEG: the scan data stops and there is no EOI marker."""
    data = photo()
    return data[: len(data) * 6 // 10]


class CheckingEngine(FakeEngine):
    def read(self, image: bytes, options: ReadOptions) -> CardReading:
        if image[:3] == b"\xff\xd8\xff" and image.rstrip(b"\x00")[-2:] != b"\xff\xd9":
            raise ImageDecodeError("truncated JPEG")
        decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded is None:
            raise ImageDecodeError("not an image")
        height, width = decoded.shape[:2]
        if width * height > options.max_pixels:
            raise ImageTooLargeError(f"{width}x{height}")
        if min(width, height) < options.min_side:
            raise ImageTooSmallError(f"{width}x{height}")
        return super().read(image, options)


# --- the real engine on a real card ------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
# The labelled dev set lives beside the checkout; it is never copied into the project.
REALCARDS = Path(os.environ.get("CARDGATE_REALCARDS", REPO_ROOT.parent / "shared" / "data" / "realcards-dev"))


@functools.lru_cache(maxsize=1)
def _real_engine_and_card():
    """(engine, image bytes, card number), or the reason to skip as a string.

    The card is the first labelled full-card JPEG (<= 2 MB, so every dialect takes
    it) that the engine, called directly, reads correctly: the end-to-end tests
    then check the gateway path, not the engine's accuracy.
    """
    try:
        from engine import Engine

        engine = Engine.load()
    except Exception as exc:  # weights not trained yet, torch missing, ...
        return f"real engine not available: {type(exc).__name__}: {exc}"
    labels = REALCARDS / "labels.tsv"
    if not labels.exists():
        return f"labelled real cards not found at {REALCARDS}"
    for line in labels.read_text(encoding="utf-8").splitlines()[1:]:
        name, kind, number = line.split("\t")[:3]
        if kind != "full_card" or not name.lower().endswith((".jpg", ".jpeg")):
            continue
        image = (REALCARDS / name).read_bytes()
        if len(image) > 2 * 1024 * 1024:
            continue
        try:
            reading = engine.read(image, ReadOptions())
        except Exception:
            continue
        if reading.number == number:
            return engine, image, number
    return "the real engine reads none of the labelled JPEG cards correctly"


def real_engine_and_card():
    """(engine, image bytes, number) for a real card the engine reads; pytest.skip otherwise."""
    import pytest

    found = _real_engine_and_card()
    if isinstance(found, str):
        pytest.skip(found)
    return found
