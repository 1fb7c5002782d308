"""Decoding limits: formats, truncation, decompression bombs, EXIF orientation."""
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.decode import decode_image, header_size, sniff_format
from engine.errors import ImageDecodeError, ImageTooLargeError, ImageTooSmallError

BIG = 50_000_000


def encode(img: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


@pytest.fixture
def picture():
    img = np.zeros((60, 100, 3), np.uint8)
    img[:, :50] = (0, 0, 255)
    return img


@pytest.mark.parametrize("ext,fmt", [(".jpg", "jpeg"), (".png", "png"), (".bmp", "bmp"), (".tiff", "tiff")])
def test_each_format_decodes_and_reports_its_header_size(picture, ext, fmt):
    data = encode(picture, ext)
    assert sniff_format(data) == fmt
    assert header_size(data) == (100, 60)
    assert decode_image(data, max_pixels=BIG).shape == (60, 100, 3)


@pytest.mark.parametrize("data", [b"", b"GIF89a\x01\x00\x01\x00", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"not an image at all", b"\x00" * 100])
def test_unsupported_or_garbage_bytes_are_refused(data):
    with pytest.raises(ImageDecodeError):
        decode_image(data, max_pixels=BIG)


def test_truncated_jpeg_and_png_are_refused(picture):
    for ext in (".jpg", ".png"):
        data = encode(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8), ext)
        with pytest.raises(ImageDecodeError):
            decode_image(data[: len(data) // 2], max_pixels=BIG)


def test_jpeg_cut_before_its_frame_header_is_refused(picture):
    data = encode(picture, ".jpg")
    with pytest.raises(ImageDecodeError):
        decode_image(data[:20], max_pixels=BIG)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge canvas: a decompression bomb's calling card."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_the_header_before_decoding():
    bomb = png_declaring(100_000, 100_000)
    assert header_size(bomb) == (100_000, 100_000)
    with pytest.raises(ImageTooLargeError):
        decode_image(bomb, max_pixels=40_000_000)


def test_pixel_limit_is_the_callers(picture):
    data = encode(picture, ".png")
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=100 * 60 - 1)
    assert decode_image(data, max_pixels=100 * 60) is not None


def test_min_side(picture):
    with pytest.raises(ImageTooSmallError):
        decode_image(encode(picture, ".png"), max_pixels=BIG, min_side=61)


def exif_turned_jpeg(width: int, height: int) -> bytes:
    """A landscape JPEG, its left half blue, whose EXIF says: turn 90 degrees clockwise to display."""
    img = Image.new("RGB", (width, height), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    return buf.getvalue()


@pytest.mark.parametrize("size, floor, shape", [((80, 40), 0, (80, 40)), ((1600, 800), 400, (400, 200))])
def test_exif_orientation_is_honoured(size, floor, shape):
    """Also at a reduction (the second case is decoded at 1/4)."""
    out = decode_image(exif_turned_jpeg(*size), max_pixels=BIG, long_side_floor=floor)
    assert out.shape[:2] == shape  # displayed portrait
    top = out[shape[0] // 8, shape[1] // 2]
    assert top[0] > 200 and top[2] < 60  # the blue half is now on top (BGR)


def test_a_large_image_is_decoded_at_the_reduction_that_keeps_the_long_side_floor():
    img = np.zeros((2400, 3600, 3), np.uint8)
    img[:, :1800] = (0, 0, 255)  # left half red
    for ext in (".jpg", ".png"):
        data = encode(img, ext)
        assert decode_image(data, max_pixels=BIG).shape[:2] == (2400, 3600)
        assert decode_image(data, max_pixels=BIG, long_side_floor=1000).shape[:2] == (1200, 1800)  # 1/4 would be 900
        assert decode_image(data, max_pixels=BIG, long_side_floor=500).shape[:2] == (600, 900)  # 1/8 would be 450
        assert decode_image(data, max_pixels=BIG, long_side_floor=450).shape[:2] == (300, 450)
        assert decode_image(data, max_pixels=BIG, long_side_floor=2000).shape[:2] == (2400, 3600)
        out = decode_image(data, max_pixels=BIG, long_side_floor=1000)
        assert out[600, 100, 2] > 200 and out[600, 1700, 2] < 60
