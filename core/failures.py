"""The vendor-neutral failures: what can go wrong with a request in terms no vendor owns.

Each dialect answers every member with an entry of its error table (adapters/error_table.py);
tests/test_error_tables.py checks that no dialect leaves one out. The exceptions the shared
machinery (core.errors) and the engine (engine.errors) raise each stand for one member.
"""
from __future__ import annotations

import enum

from core import errors
from engine import errors as engine_errors


class Failure(enum.Enum):
    BODY_TOO_LARGE = "body over the dialect's limit"
    BODY_TIMEOUT = "body stalled"
    BAD_JSON = "body not JSON, or nested too deep"
    BAD_BASE64 = "image field not strict base64"
    IMAGE_BYTES_TOO_LARGE = "image bytes over the dialect's limit"
    UNSUPPORTED_FORMAT = "image format the vendor refuses"
    DOWNLOAD_FAILED = "image URL could not be fetched"
    DOWNLOAD_TIMEOUT = "image URL download timed out"
    DOWNLOAD_FORBIDDEN = "image URL on a refused address"
    DOWNLOAD_TOO_LARGE = "image URL download too large"
    BUSY = "engine queue full"
    RATE_LIMITED = "credential over its rate limit"
    NOT_FOUND = "no such route or action"
    DRAINING = "gateway draining"
    REPLAY_STORE_UNAVAILABLE = "replay store unreachable"
    IMAGE_UNDECODABLE = "not an image, or corrupt"
    IMAGE_TOO_LARGE = "image over the pixel limit"
    IMAGE_TOO_SMALL = "image under the minimum side"
    NO_CARD = "no card in the image"
    NUMBER_UNREADABLE = "card found, number unreadable"
    BLURRED = "image too blurred"
    ENGINE_FAILED = "any other engine failure"


# Each exception class -> the failure it stands for; a subclass not listed is its nearest base's.
EXCEPTION_FAILURES: dict[type[BaseException], Failure] = {
    errors.BodyTooLargeError: Failure.BODY_TOO_LARGE,
    errors.BodyTimeoutError: Failure.BODY_TIMEOUT,
    errors.BadJSONError: Failure.BAD_JSON,
    errors.BadBase64Error: Failure.BAD_BASE64,
    errors.ImageTooLargeBytesError: Failure.IMAGE_BYTES_TOO_LARGE,
    errors.UnsupportedFormatError: Failure.UNSUPPORTED_FORMAT,
    errors.FetchError: Failure.DOWNLOAD_FAILED,
    errors.FetchTimeoutError: Failure.DOWNLOAD_TIMEOUT,
    errors.FetchForbiddenError: Failure.DOWNLOAD_FORBIDDEN,
    errors.FetchTooLargeError: Failure.DOWNLOAD_TOO_LARGE,
    errors.EngineBusyError: Failure.BUSY,
    errors.RateLimitedError: Failure.RATE_LIMITED,
    errors.RouteNotFoundError: Failure.NOT_FOUND,
    errors.ShuttingDownError: Failure.DRAINING,
    errors.ReplayStoreUnavailableError: Failure.REPLAY_STORE_UNAVAILABLE,
    engine_errors.ImageDecodeError: Failure.IMAGE_UNDECODABLE,
    engine_errors.ImageTooLargeError: Failure.IMAGE_TOO_LARGE,
    engine_errors.ImageTooSmallError: Failure.IMAGE_TOO_SMALL,
    engine_errors.NoCardFoundError: Failure.NO_CARD,
    engine_errors.NumberUnreadableError: Failure.NUMBER_UNREADABLE,
    engine_errors.ImageBlurredError: Failure.BLURRED,
    engine_errors.EngineError: Failure.ENGINE_FAILED,
}


def failure_of(exc: BaseException) -> Failure | None:
    """The failure `exc` stands for; None for anything else (a bug: each dialect's internal error)."""
    for kind in type(exc).__mro__:
        failure = EXCEPTION_FAILURES.get(kind)
        if failure is not None:
            return failure
    return None
