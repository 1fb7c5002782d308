"""Face++'s error table. The message is the code, followed by ":<param>" (or ": <keys>" for
MISSING_ARGUMENTS) where the doc has one (adapters/facepp.py adds it). An image with nothing
readable is no error for Face++: NOTHING_READ is answered as a 200 with an empty `bank_cards`
list, and "Request Entity Too Large" is a plain-text page, not JSON.
"""
from __future__ import annotations

from adapters.base import VendorError
from adapters.error_table import ErrorEntry, ErrorTable
from core.failures import Failure

# The keys of the two rows that are no JSON error.
PLAIN_TEXT = "Request Entity Too Large"
NOTHING_READ = "NOTHING_READ"

ERRORS = ErrorTable([
    ErrorEntry("IMAGE_ERROR_UNSUPPORTED_FORMAT", 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT",
               failures=(Failure.UNSUPPORTED_FORMAT, Failure.IMAGE_UNDECODABLE)),
    ErrorEntry("INVALID_IMAGE_SIZE", 400, "INVALID_IMAGE_SIZE",
               failures=(Failure.IMAGE_TOO_LARGE, Failure.IMAGE_TOO_SMALL)),
    ErrorEntry("INVALID_IMAGE_URL", 400, "INVALID_IMAGE_URL",
               failures=(Failure.DOWNLOAD_FAILED, Failure.DOWNLOAD_FORBIDDEN)),
    ErrorEntry("IMAGE_FILE_TOO_LARGE", 400, "IMAGE_FILE_TOO_LARGE",
               failures=(Failure.IMAGE_BYTES_TOO_LARGE, Failure.DOWNLOAD_TOO_LARGE)),
    ErrorEntry("MISSING_ARGUMENTS", 400, "MISSING_ARGUMENTS"),
    # BODY_TIMEOUT: as a cut-off form (IMAGE_DOWNLOAD_TIMEOUT is for image_url)
    ErrorEntry("BAD_ARGUMENTS", 400, "BAD_ARGUMENTS",
               failures=(Failure.BODY_TIMEOUT, Failure.BAD_JSON, Failure.BAD_BASE64)),
    ErrorEntry("COEXISTENCE_ARGUMENTS", 400, "COEXISTENCE_ARGUMENTS"),
    ErrorEntry("AUTHENTICATION_ERROR", 401, "AUTHENTICATION_ERROR"),
    ErrorEntry("AUTHORIZATION_ERROR", 403, "AUTHORIZATION_ERROR"),
    ErrorEntry("CONCURRENCY_LIMIT_EXCEEDED", 403, "CONCURRENCY_LIMIT_EXCEEDED",
               failures=(Failure.BUSY, Failure.RATE_LIMITED)),
    ErrorEntry("API_NOT_FOUND", 404, "API_NOT_FOUND", failures=(Failure.NOT_FOUND,)),
    ErrorEntry("IMAGE_DOWNLOAD_TIMEOUT", 412, "IMAGE_DOWNLOAD_TIMEOUT", failures=(Failure.DOWNLOAD_TIMEOUT,)),
    # plain text, not JSON
    ErrorEntry("Request Entity Too Large", 413, "Request Entity Too Large", failures=(Failure.BODY_TOO_LARGE,)),
    # DRAINING: "please retry", which is what a draining server wants
    ErrorEntry("INTERNAL_ERROR", 500, "INTERNAL_ERROR",
               failures=(Failure.DRAINING, Failure.REPLAY_STORE_UNAVAILABLE, Failure.ENGINE_FAILED)),
    ErrorEntry("", 200, "",
               failures=(Failure.NO_CARD, Failure.NUMBER_UNREADABLE, Failure.BLURRED),
               key="NOTHING_READ"),
], fallback="INTERNAL_ERROR")


class FaceppError(VendorError):
    """An error of this dialect, named by a key of ERRORS (no other can be raised)."""

    table = ERRORS


def error_code_for(exc: BaseException) -> str:
    """Any exception -> the code its answer carries (the start of error_message), for metrics and logs.

    The images Face++ answers with an empty `bank_cards` list have no code of their own; they
    keep their neutral name (NoCardFoundError, ...), which still tells "no card" from
    "unreadable" and "blurred".
    """
    entry = ERRORS.for_exception(exc)
    return type(exc).__name__ if entry.key == NOTHING_READ else str(entry.code)
