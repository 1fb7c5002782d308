"""Test doubles for the gateway: a fake engine and fake card images.

FakeEngine stands in for engine.Engine: same `read(image_bytes, ReadOptions)`,
no torch. It returns a realistic CardReading (or raises a given error) and
records every call, so tests can check the options a dialect asked for.

    engine = FakeEngine()                                   # default reading
    engine = FakeEngine(make_reading(number="6217000010030385457", warnings=["reshoot"]))
    engine = FakeEngine(error=NoCardFoundError())           # every read raises it
    engine = FakeEngine(number_from_image=True)             # number read from fake_card_image(number)
    engine = FakeEngine(delay_s=0.2)                        # slow reads (busy-queue tests)
    engine.last_options, engine.options, engine.images, engine.calls
"""
from __future__ import annotations

import base64
import re
import threading
import time

import msgspec

from engine.types import BankInfo, Box, CardReading, ReadOptions, TextField

DEFAULT_NUMBER = "6225760088888888"

# A real 40x24 JPEG, standing in for the border-cut and card-number crops.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCAAYACgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDpru6gsrWS5uXCRRjLMajvNRtrK3jmuGdRKQqIEJdiewUDOaxtbiGoeILWwubt7W2ih+0IUIBkkDY6kEfKOfxqODWIYLJ7nUGW8ntrp4LKQABp+AOMcd8E9OKANdda09rGS888rFE2xwyMGVv7pUjOeemKItbsJbe5m8yRPsq75kkjZHQYznaRntWbCLOwsLjU9ZlgkmkmWd1jwwRwMIq+pAHWq00a3enalqOp3KWzXUCxbIx5ht4s8bgOpy3PpQBu2Wq297L5cMd0p27syW7ouPqRiis+2uLi11qzs11L7fFcxuzhlTMW0AhgVA4PTBooA2Lm0trxAl3bxToDkLIgYD86jm02wnjjjnsbaRIsiNXiUhM+gI4oooAYNI0sRGIabZiNiGKeQuCRnBxjryfzp8Gm6fbFjbWNrCXXaxjhVdw9DgdKKKAHWtjZ2ZY2lpBAX+95cYXP1xRRRQB//9k="
)
TINY_JPEG_B64 = base64.b64encode(TINY_JPEG).decode()

CMB_BANK = BankInfo(
    institution_code="03080000",
    bank_name="招商银行",
    bank_name_en="China Merchants Bank",
    card_name="招商银行信用卡",
    card_kind="贷记卡",
    network="UnionPay",
    pan_lengths=(16,),
)


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def group_digits(number: str) -> str:
    """'6225760088888888' -> '6225 7600 8888 8888' (groups of four, as printed on most cards)."""
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def make_reading(
    number: str = DEFAULT_NUMBER,
    *,
    printed: str | None = None,
    confidence: float = 0.98,
    expiry: str | None = "08/22",
    bank: BankInfo | None = CMB_BANK,
    warnings: list[str] | None = None,
    quality: int | None = None,
) -> CardReading:
    """A plausible CardReading for a 1280x800 photo of a card rectified to 856x540."""
    return CardReading(
        number=number,
        number_printed=printed if printed is not None else group_digits(number),
        number_confidence=confidence,
        digit_confidences=[min(1.0, confidence + 0.01)] * len(number),
        number_valid=luhn_ok(number),
        number_quad=((212.0, 452.0), (1004.0, 458.0), (1003.0, 512.0), (211.0, 506.0)),
        number_box=Box(x=72, y=300, width=712, height=50),
        card_quad=((150.0, 140.0), (1130.0, 150.0), (1122.0, 760.0), (142.0, 752.0)),
        image_size=(1280, 800),
        rectified_size=(856, 540),
        expiry=None
        if expiry is None
        else TextField(
            text=expiry,
            confidence=0.96,
            quad=((520.0, 560.0), (610.0, 561.0), (610.0, 592.0), (520.0, 591.0)),
            box=Box(x=330, y=372, width=82, height=28),
        ),
        bank=bank,
        quality=quality,
        warnings=list(warnings or []),
        timings_ms={"detect": 11.0, "rectify": 3.0, "recognize": 9.0},
    )


# --- fake images --------------------------------------------------------------

_CARD_MARK = re.compile(rb"CARD:(\d{12,19})")


def fake_card_image(number: str = DEFAULT_NUMBER, padding: int = 0) -> bytes:
    """JPEG-looking bytes (right magic) that tell FakeEngine(number_from_image=True) which number to read."""
    return b"\xff\xd8\xff\xe0" + b"CARD:" + number.encode() + b"\x00" * padding + b"\xff\xd9"


def number_in_image(image: bytes) -> str | None:
    match = _CARD_MARK.search(image)
    return match.group(1).decode() if match else None


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GIF_BYTES = b"GIF89a" + b"\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20
WEBP_BYTES = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24


def png_header(width: int, height: int) -> bytes:
    """The first bytes of a PNG declaring width x height (enough for header-size checks)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return PNG_MAGIC + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


# --- the engine -----------------------------------------------------------------


class FakeEngine:
    """engine.Engine look-alike: `read(image, options) -> CardReading`, thread-safe, no torch."""

    ready = True

    def __init__(
        self,
        reading: CardReading | None = None,
        *,
        error: BaseException | None = None,
        number_from_image: bool = False,
        delay_s: float = 0.0,
    ):
        self.reading = reading if reading is not None else make_reading()
        self.error = error
        self.number_from_image = number_from_image
        self.delay_s = delay_s
        self.calls: list[tuple[bytes, ReadOptions]] = []
        self._lock = threading.Lock()
        self.max_concurrent = 0
        self._running = 0

    @property
    def images(self) -> list[bytes]:
        return [image for image, _ in self.calls]

    @property
    def options(self) -> list[ReadOptions]:
        return [options for _, options in self.calls]

    @property
    def last_options(self) -> ReadOptions | None:
        return self.calls[-1][1] if self.calls else None

    def read(self, image: bytes, options: ReadOptions) -> CardReading:
        with self._lock:
            self.calls.append((bytes(image), options))
            self._running += 1
            self.max_concurrent = max(self.max_concurrent, self._running)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.error is not None:
                raise self.error
            reading = self.reading
            if self.number_from_image:
                number = number_in_image(image)
                if number is not None:
                    reading = msgspec.structs.replace(
                        reading,
                        number=number,
                        number_printed=group_digits(number),
                        digit_confidences=[reading.number_confidence] * len(number),
                        number_valid=luhn_ok(number),
                    )
            # Like the real engine: crops and quality only when asked for.
            return msgspec.structs.replace(
                reading,
                border_cut_jpeg=TINY_JPEG if options.want_border_cut_image else None,
                card_no_jpeg=TINY_JPEG if options.want_card_no_image else None,
                quality=(reading.quality if reading.quality is not None else 87) if options.want_quality else None,
                warnings=list(reading.warnings),
            )
        finally:
            with self._lock:
                self._running -= 1
