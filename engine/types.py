"""What the engine returns: plain msgspec Structs, JSON-ready, vendor-neutral.

Coordinates are pixels. A `Quad` is four (x, y) points ordered as on the card:
left_top, right_top, right_bottom, left_bottom, whatever the photo's rotation.
"""
from __future__ import annotations

import msgspec

from bin_tables import BankInfo  # noqa: F401  (issuer facts: the BIN table's own type, below the engine)

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]


class Box(msgspec.Struct, frozen=True):
    """Axis-aligned box: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int


class TextField(msgspec.Struct):
    """A date read from the card (expiry or issue date)."""

    text: str  # "MM/YY"
    confidence: float  # 0..1
    quad: Quad  # in the original image
    box: Box  # in the rectified card


# Warning names the engine may report; adapters map them to vendor codes.
WARN_INVALID_DATE = "invalid_date"
WARN_BORDER_INCOMPLETE = "border_incomplete"
WARN_REFLECTION = "reflection"
WARN_PHOTOCOPY = "photocopy"
WARN_RESHOOT = "reshoot"
WARNINGS = (WARN_INVALID_DATE, WARN_BORDER_INCOMPLETE, WARN_REFLECTION, WARN_PHOTOCOPY, WARN_RESHOOT)


class ReadOptions(msgspec.Struct, frozen=True):
    """What the caller wants besides the number. Defaults do the least work."""

    want_border_cut_image: bool = False  # JPEG of the rectified card
    want_card_no_image: bool = False  # JPEG of the number-line crop
    check_border: bool = False
    check_reflection: bool = False
    check_copy: bool = False
    check_reshoot: bool = False
    want_quality: bool = False
    want_issue_date: bool = False  # the "valid from" date: read only for callers that report it
    max_pixels: int = 40_000_000  # header-declared pixels refused above this
    min_side: int = 0  # images whose shorter side is below this are refused
    blur_floor: int = 0  # quality below this raises ImageBlurredError (0: off; 25 suggested)


class CardReading(msgspec.Struct):
    number: str  # digits only
    number_printed: str  # as printed, grouping kept: "6217 0000 1003 0385 457"
    number_confidence: float  # 0..1, overall
    digit_confidences: list[float]
    number_valid: bool  # Luhn passes and the length fits the BIN entry
    number_quad: Quad  # number line in the original image
    number_box: Box  # number line in the rectified card
    card_quad: Quad  # card outline in the original image
    image_size: tuple[int, int]  # (width, height) after EXIF orientation
    rectified_size: tuple[int, int]  # (width, height) of the rectified card
    expiry: TextField | None = None
    issue_date: TextField | None = None
    bank: BankInfo | None = None
    quality: int | None = None  # 0..100 sharpness, when asked for
    warnings: list[str] = msgspec.field(default_factory=list)
    border_cut_jpeg: bytes | None = None  # when ReadOptions.want_border_cut_image
    card_no_jpeg: bytes | None = None  # when ReadOptions.want_card_no_image
    timings_ms: dict[str, float] = msgspec.field(default_factory=dict)
