"""The hex errorcodes (spec 1.3.5), keyed by their errormsg names, plus our auth code (-1: the
spec has no auth). An unknown path is -5208 with HTTP 404; everything else is HTTP 200.
"""
from __future__ import annotations

from adapters.base import VendorError
from adapters.error_table import ErrorEntry, ErrorTable
from core.failures import Failure

ERRORS = ErrorTable([
    ErrorEntry(-5208, 200, "OCR_SERVER_INTERN_ERROR",
               failures=(Failure.BUSY, Failure.RATE_LIMITED, Failure.DRAINING, Failure.REPLAY_STORE_UNAVAILABLE,
                         Failure.ENGINE_FAILED),
               key="OCR_SERVER_INTERN_ERROR"),
    ErrorEntry(-1102, 200, "SDK_IMAGE_DECODE_FAILED",
               failures=(Failure.BODY_TOO_LARGE, Failure.BAD_BASE64, Failure.IMAGE_BYTES_TOO_LARGE,
                         Failure.UNSUPPORTED_FORMAT, Failure.DOWNLOAD_FAILED, Failure.DOWNLOAD_TIMEOUT,
                         Failure.DOWNLOAD_FORBIDDEN, Failure.DOWNLOAD_TOO_LARGE, Failure.IMAGE_UNDECODABLE,
                         Failure.IMAGE_TOO_LARGE),
               key="SDK_IMAGE_DECODE_FAILED"),
    # BODY_TIMEOUT: a body that stopped arriving: as one that is not JSON
    # BAD_JSON: what a body that is not JSON gets
    ErrorEntry(-9010, 200, "CREDITCARD_OCR_PREPROCESS_ERROR",
               failures=(Failure.BODY_TIMEOUT, Failure.BAD_JSON, Failure.IMAGE_TOO_SMALL),
               key="CREDITCARD_OCR_PREPROCESS_ERROR"),
    ErrorEntry(-9011, 200, "CREDITCARD_OCR_RECOG_FAILED",
               failures=(Failure.NUMBER_UNREADABLE,),
               key="CREDITCARD_OCR_RECOG_FAILED"),
    ErrorEntry(-9012, 200, "CREDITCARD_OCR_IMAGE_BLUR", failures=(Failure.BLURRED,), key="CREDITCARD_OCR_IMAGE_BLUR"),
    ErrorEntry(-9013, 200, "ERROR_NOT_A_CREDITCARD", failures=(Failure.NO_CARD,), key="ERROR_NOT_A_CREDITCARD"),
    ErrorEntry(-9014, 200, "ERROR_CREDITCARD_ILLEGAL", key="ERROR_CREDITCARD_ILLEGAL"),
    ErrorEntry(-1, 401, "AUTH_FAILED", key="AUTH_FAILED"),
    ErrorEntry(-5208, 404, "OCR_SERVER_INTERN_ERROR",
               failures=(Failure.NOT_FOUND,),
               key="OCR_SERVER_INTERN_ERROR.not_found"),
], fallback="OCR_SERVER_INTERN_ERROR")


class HexError(VendorError):
    """An error of this dialect, named by a key of ERRORS (no other can be raised)."""

    table = ERRORS


def error_code_for(exc: BaseException) -> int | str:
    """Any exception -> the code its answer carries (errorcode), for metrics and logs."""
    return ERRORS.code_for(exc)
