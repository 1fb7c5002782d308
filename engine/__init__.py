"""cardgate's card reading engine: one image in, one CardReading out.

Public API:
    Engine.load()                       -> Engine (weights shipped in engine/weights)
    engine.read(image, options)         -> CardReading   (bytes or decoded BGR array)
    engine.read_batch(images, options)  -> list[CardReading | EngineError]
"""
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
