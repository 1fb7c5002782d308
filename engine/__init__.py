"""cardgate's card reading engine: one image in, one CardReading out.

Public API:
    Engine.load()                       -> Engine (weights shipped in engine/weights)
    engine.read(image, options)         -> CardReading   (bytes or decoded BGR array)
    engine.read_batch(images, options)  -> list[CardReading | EngineError]
"""
import os

# OpenCV's own cap on decoded pixels, the backstop behind the header checks of engine.decode
# (a header reader fooled by a crafted file must not let a huge canvas be allocated). OpenCV
# reads the variable once, when cv2 is loaded: this runs before any engine module imports cv2.
# The largest limit any dialect documents is Huawei's 8192 px per side.
MAX_DECODE_PIXELS = 8192 * 8192
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_DECODE_PIXELS))

from engine.errors import (
    EngineError,
    ImageBlurredError,
    ImageDecodeError,
    ImageTooLargeError,
    ImageTooSmallError,
    NoCardFoundError,
    NumberUnreadableError,
)
from engine.types import BankInfo, Box, CardReading, ReadOptions, TextField

__all__ = [
    "Engine",
    "CardReading",
    "ReadOptions",
    "TextField",
    "BankInfo",
    "Box",
    "EngineError",
    "ImageDecodeError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "ImageBlurredError",
    "NoCardFoundError",
    "NumberUnreadableError",
]


def __getattr__(name):  # Engine pulls in torch: import it only when asked for
    if name == "Engine":
        from engine.pipeline import Engine

        return Engine
    raise AttributeError(name)
