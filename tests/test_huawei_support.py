"""Test doubles shared by the Huawei and Face++ dialect tests (no tests here).

`CheckingEngine` is tests.fakes.FakeEngine plus the input checks the real
engine makes: it decodes the bytes (so a truncated JPEG or a non-image fails
with ImageDecodeError) and applies the caller's ReadOptions size limits. The
reading itself is FakeEngine's canned card.
"""
from __future__ import annotations

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
