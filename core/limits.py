"""A vendor's documented input limits, as data: each dialect declares its own, the gateway enforces them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageLimits:
    """A vendor's documented input limits, as data."""

    max_body_bytes: int  # whole HTTP body, enforced while streaming
    max_image_bytes: int  # decoded image bytes (upload, base64 payload or download)
    fetch_timeout_s: float  # whole download of an image URL
    max_pixels: int  # header-declared width*height refused above this
    min_side: int = 0  # shorter side below this is refused
    max_side: int = 0  # longer side above this is refused (0: no limit)
    formats: frozenset[str] = frozenset({"jpeg", "png", "bmp", "tiff"})
