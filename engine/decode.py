"""Image bytes -> BGR array, refusing what must not reach the decoder.

The pixel count is read from the file header *before* decoding, so a
decompression bomb (a small file declaring a huge canvas) costs nothing.
EXIF orientation is applied by OpenCV's imdecode.
"""
from __future__ import annotations

import struct

import cv2
import numpy as np

from engine import MAX_DECODE_PIXELS
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


# JPEG markers as libjpeg reads them (jdmarker.c): which carry a length, which do not.
_PARAMETERLESS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # C4 DHT, C8 JPG, CC DAC are not frames
_LENGTHED = frozenset({0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xFE, *range(0xE0, 0xF0)})  # DHT DAC DQT DNL DRI COM APPn


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The first frame header's size, found the way libjpeg finds it: bytes other than a
    marker are skipped, FF fill bytes run into the marker, FF 00 is no marker, and a marker
    libjpeg would refuse before the frame (SOS, EOI, a second SOI, an unknown one) ends the
    search with None."""
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            i += 1  # junk between segments: libjpeg warns and reads on
            continue
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0x00:  # a stuffed zero, not a marker
            continue
        if marker in _PARAMETERLESS:
            continue
        if marker in _SOF:
            if i + 7 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 3 : i + 7])
            return w, h
        if marker not in _LENGTHED or i + 2 > n:
            return None
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2:
            return None
        i += length
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
        size: dict[int, int] = {}
        for k in range(count):
            entry = data[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
            tag, typ = struct.unpack(end + "HH", entry[:4])
            if tag in (256, 257):
                value = struct.unpack(end + ("H" if typ == 3 else "I"), entry[8:10] if typ == 3 else entry[8:12])[0]
                # A tag given twice: which one libtiff keeps is its business, the larger bounds both.
                size[tag] = max(value, size.get(tag, 0))
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
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)  # applies EXIF orientation
    except cv2.error as exc:
        # OpenCV's pixel cap (MAX_DECODE_PIXELS) is an assertion; anything else it raises is a bad file
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise ImageTooLargeError(f"{fmt} decodes to more than {MAX_DECODE_PIXELS} pixels") from None
        raise ImageDecodeError(f"corrupt {fmt}") from None
    if img is None or img.size == 0:
        raise ImageDecodeError(f"corrupt {fmt}")
    return img
