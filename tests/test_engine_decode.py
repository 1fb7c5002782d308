"""Decoding limits: formats, truncation, decompression bombs, EXIF orientation."""
import io
import os
import struct
import subprocess
import sys
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


def jpeg_with_a_decoy_frame(real: bytes, w: int, h: int) -> bytes:
    """`real` with a decoy frame header (w x h) that only a reader taking FF 00 for a segment sees.

    After SOI: FF 00 and two bytes a misreader takes for a segment length, landing it on
    the decoy inside an APP1 payload; libjpeg skips those four bytes as junk, then the
    whole APP1, and decodes the real frame that follows.
    """
    decoy = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    payload = b"\x00" * 10 + decoy
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + len(payload)) + payload
    return real[:2] + b"\xff\x00" + struct.pack(">H", 6 + 10) + app1 + real[2:]


def test_a_decoy_frame_behind_ff00_does_not_hide_the_real_size(monkeypatch):
    real = encode(np.zeros((3000, 3000), np.uint8), ".jpg")
    crafted = jpeg_with_a_decoy_frame(real, 100, 100)
    assert header_size(crafted) == (3000, 3000)
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a refused image"))
    with pytest.raises(ImageTooLargeError):
        decode_image(crafted, max_pixels=1_000_000)


@pytest.mark.parametrize(
    "data, size",
    [
        (b"\xff\xd8\xff\xff\xff\xc0\x00\x11\x08\x00\x30\x00\x40\x01\x01\x11\x00", (64, 48)),  # fill bytes
        (b"\xff\xd8\xff\xd0\xff\x01\xff\xc2\x00\x11\x08\x00\x30\x00\x40\x01\x01\x11\x00", (64, 48)),  # RST0, TEM
        (b"\xff\xd8\xff\xc4\x00\x02\xff\xc1\x00\x11\x08\x00\x30\x00\x40\x01\x01\x11\x00", (64, 48)),  # DHT is no frame
        (b"\xff\xd8\xff\xda\x00\x02\xff\xc0\x00\x11\x08\x00\x30\x00\x40\x01\x01\x11\x00", None),  # scan before frame
        (b"\xff\xd8\xff\xd8\xff\xc0\x00\x11\x08\x00\x30\x00\x40\x01\x01\x11\x00", None),  # second SOI
        (b"\xff\xd8\xff\xe0\x00\x01\xff\xc0\x00\x11\x08\x00\x30\x00\x40\x01\x01\x11\x00", None),  # length below 2
    ],
)
def test_jpeg_markers_are_read_as_libjpeg_reads_them(data, size):
    assert header_size(data) == size


def tiff_with_size_tags_twice(real: bytes, w: int, h: int) -> bytes:
    """`real` with a second ImageWidth and ImageLength (w x h) right after the first ones.

    libtiff keeps the first of a duplicated tag, a reader keeping the last sees w x h.
    """
    end = "<" if real[:2] == b"II" else ">"
    (ifd,) = struct.unpack(end + "I", real[4:8])
    (count,) = struct.unpack(end + "H", real[ifd : ifd + 2])
    entries = []
    for k in range(count):
        entry = real[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        entries.append(entry)
        (tag,) = struct.unpack(end + "H", entry[:2])
        if tag in (256, 257):
            entries.append(struct.pack(end + "HHII", tag, 4, 1, w if tag == 256 else h))
    next_ifd = real[ifd + 2 + 12 * count : ifd + 6 + 12 * count]
    new_ifd = len(real) + len(real) % 2
    body = real.ljust(new_ifd, b"\x00") + struct.pack(end + "H", len(entries)) + b"".join(entries) + next_ifd
    return body[:4] + struct.pack(end + "I", new_ifd) + body[8:]


def test_tiff_size_tags_given_twice_are_bounded_by_the_larger(monkeypatch):
    real = encode(np.zeros((3000, 3000), np.uint8), ".tiff")
    crafted = tiff_with_size_tags_twice(real, 100, 100)
    assert header_size(crafted) == (3000, 3000)
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a refused image"))
    with pytest.raises(ImageTooLargeError):
        decode_image(crafted, max_pixels=1_000_000)


HARD_CAP_CHECK = """
import struct, sys
import numpy as np
import engine.decode
from engine.errors import ImageTooLargeError
import cv2

small = cv2.imencode(".jpg", np.zeros((16, 16), np.uint8))[1].tobytes()
sof = small.index(b"\\xff\\xc0")
side = 8192 + 8  # just over the cap
bomb = small[: sof + 5] + struct.pack(">HH", side, side) + small[sof + 9 :]
engine.decode.header_size = lambda data: (100, 100)  # a header reader fooled some other way
try:
    engine.decode.decode_image(bomb, max_pixels=10**9)
except ImageTooLargeError:
    sys.exit(0)
sys.exit("decoded past the cap")
"""


def test_opencv_itself_refuses_more_than_the_engine_cap():
    """In a fresh interpreter: OpenCV reads its cap once, when cv2 is first loaded."""
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", HARD_CAP_CHECK], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
