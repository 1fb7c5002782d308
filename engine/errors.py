"""Typed engine errors. Adapters map each to their vendor's own code."""


class EngineError(Exception):
    """Base class of everything Engine.read raises on purpose."""


class ImageDecodeError(EngineError):
    """Not a JPEG/PNG/BMP/TIFF, or corrupt/truncated bytes."""


class ImageTooLargeError(EngineError):
    """The header declares more pixels than the configured limit (decompression bomb guard)."""


class ImageTooSmallError(EngineError):
    """The image is smaller than the caller's minimum side."""


class NoCardFoundError(EngineError):
    """No bank card in the image."""


class NumberUnreadableError(EngineError):
    """A card was found but its number cannot be read with confidence."""


class ImageBlurredError(EngineError):
    """The image is too blurred to read (quality below the configured floor)."""
