"""Image bytes -> BGR array, refusing what must not reach the decoder.

The pixel count is read from the file header *before* decoding, so a
decompression bomb (a small file declaring a huge canvas) costs nothing.
EXIF orientation is applied by OpenCV's imdecode.
"""
from __future__ import annotations

import struct

import cv2
import numpy as np

from engine.errors import ImageDecodeError, ImageTooLargeError, ImageTooSmallError

FORMATS = ("jpeg", "png", "bmp", "tiff")


def sniff_format(data: bytes) -> str | None:
    """The image format named by the magic bytes (the engine decodes FORMATS; GIF and WebP are
    named so that callers can refuse them by name), or None when unknown."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:
        w, h = struct.unpack("<HH", data[18:22])
    else:
        w, h = struct.unpack("<ii", data[18:26])
    return abs(w), abs(h)


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    end = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(end + "I", data[4:8])
        (count,) = struct.unpack(end + "H", data[ifd : ifd + 2])
        size = {}
        for k in range(count):
            entry = data[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
            tag, typ = struct.unpack(end + "HH", entry[:4])
            if tag in (256, 257):
                value = struct.unpack(end + ("H" if typ == 3 else "I"), entry[8:10] if typ == 3 else entry[8:12])[0]
                size[tag] = value
        return size[256], size[257]
    except (struct.error, KeyError):
        return None


_SIZE_READERS = {"jpeg": _jpeg_size, "png": _png_size, "bmp": _bmp_size, "tiff": _tiff_size}


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by the header of a JPEG, PNG, BMP or TIFF, or None."""
    reader = _SIZE_READERS.get(sniff_format(data))
    try:
        return reader(data) if reader else None
    except struct.error:
        return None


def _looks_complete(fmt: str, data: bytes) -> bool:
    """Truncated files decode to half-grey images in OpenCV without an error: refuse them."""
    tail = data[-4096:]
    if fmt == "jpeg":
        return b"\xff\xd9" in tail
    if fmt == "png":
        return b"IEND" in tail
    return True


# libjpeg decodes a JPEG straight to 1/2, 1/4 or 1/8 of its size, skipping most of the work
# (OpenCV's IMREAD_REDUCED_*; other formats are decoded whole and shrunk).
_REDUCED_READS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def decode_image(data: bytes, *, max_pixels: int, min_side: int = 0, long_side_floor: int = 0) -> np.ndarray:
    """Decode a JPEG/PNG/BMP/TIFF to BGR, EXIF orientation applied, after the checks of its
    header (format, declared size against `max_pixels` and `min_side`, truncation). With
    `long_side_floor`, an image more than twice that on its longest side is decoded at the
    largest reduction (1/2, 1/4, 1/8) that keeps the longest side at or above it."""
    fmt = sniff_format(data)
    if fmt not in FORMATS:
        raise ImageDecodeError("not a JPEG, PNG, BMP or TIFF image")
    size = header_size(data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise ImageDecodeError(f"unreadable {fmt} header")
    if size[0] * size[1] > max_pixels:
        raise ImageTooLargeError(f"{size[0]}x{size[1]} exceeds {max_pixels} pixels")
    if min(size) < min_side:
        raise ImageTooSmallError(f"{size[0]}x{size[1]} is below {min_side} px")
    if not _looks_complete(fmt, data):
        raise ImageDecodeError(f"truncated {fmt}")
    flag = cv2.IMREAD_COLOR
    if long_side_floor:
        flag = next((f for r, f in _REDUCED_READS if max(size) // r >= long_side_floor), flag)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)  # applies EXIF orientation
    if img is None or img.size == 0:
        raise ImageDecodeError(f"corrupt {fmt}")
    return img
