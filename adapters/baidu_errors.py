"""Baidu's OCR error codes (spec §5), keyed by the code as text, or `code.variant` where one
code has two messages; always HTTP 200 (the SDK ignores the status). The token endpoint's
OAuth errors are rows too: their code is the OAuth `error` string and their status is real.
"""
from __future__ import annotations

from adapters.base import VendorError
from adapters.error_table import ErrorEntry, ErrorTable
from core.failures import Failure

ERRORS = ErrorTable([
    ErrorEntry(1, 200, "Unknown error"),
    ErrorEntry(2, 200, "Service temporarily unavailable",
               failures=(Failure.DRAINING, Failure.REPLAY_STORE_UNAVAILABLE)),
    ErrorEntry(3, 200, "Unsupported openapi method", failures=(Failure.NOT_FOUND,)),
    ErrorEntry(4, 200, "Open api request limit reached"),
    ErrorEntry(6, 200, "No permission to access data"),
    ErrorEntry(14, 200, "IAM Certification failed"),
    ErrorEntry(17, 200, "Open api daily request limit reached"),
    # BUSY: retryable: the QPS answer clients already back off on
    ErrorEntry(18, 200, "Open api qps request limit reached", failures=(Failure.BUSY, Failure.RATE_LIMITED)),
    ErrorEntry(19, 200, "Open api total request limit reached"),
    ErrorEntry(100, 200, "Invalid parameter"),
    ErrorEntry(110, 200, "Access token invalid or no longer valid"),
    ErrorEntry(111, 200, "Access token expired"),
    # BODY_TIMEOUT: invalid param: the form never came whole (no timeout code but the URL fetch's)
    ErrorEntry(216100, 200, "invalid param", failures=(Failure.BODY_TIMEOUT,)),
    ErrorEntry(216101, 200, "not enough param"),
    ErrorEntry(216101, 200, "param image not exist", key="216101.image"),
    ErrorEntry(216103, 200, "param too long"),
    ErrorEntry(216200, 200, "empty image"),
    ErrorEntry(216201, 200, "image format error",
               failures=(Failure.BAD_BASE64, Failure.UNSUPPORTED_FORMAT, Failure.IMAGE_UNDECODABLE)),
    ErrorEntry(216202, 200, "image size error",
               failures=(Failure.IMAGE_BYTES_TOO_LARGE, Failure.DOWNLOAD_TOO_LARGE, Failure.IMAGE_TOO_LARGE,
                         Failure.IMAGE_TOO_SMALL)),
    ErrorEntry(216202, 200, "input oversize", failures=(Failure.BODY_TOO_LARGE,), key="216202.oversize"),
    ErrorEntry(216630, 200, "recognize error", failures=(Failure.NUMBER_UNREADABLE,)),
    # BLURRED: "a cut-off or blurred card"
    ErrorEntry(216631, 200, "recognize bank card error", failures=(Failure.NO_CARD, Failure.BLURRED)),
    ErrorEntry(216634, 200, "detect error"),
    ErrorEntry(282000, 200, "internal error", failures=(Failure.BAD_JSON, Failure.ENGINE_FAILED)),
    ErrorEntry(282111, 200, "url format illegal"),
    ErrorEntry(282112, 200, "url download timeout", failures=(Failure.DOWNLOAD_TIMEOUT,)),
    ErrorEntry(282113, 200, "url response invalid", failures=(Failure.DOWNLOAD_FAILED, Failure.DOWNLOAD_FORBIDDEN)),
    ErrorEntry(282114, 200, "url size error"),
    ErrorEntry("invalid_client", 401, "unknown client id", key="invalid_client.unknown"),
    ErrorEntry("invalid_client", 401, "Client authentication failed", key="invalid_client.secret"),
    ErrorEntry("unsupported_grant_type", 400, "The authorization grant type is not supported"),
], fallback="282000")

# The token endpoint's rows: answered {"error", "error_description"} with their HTTP status.
TOKEN_ERROR_KEYS = frozenset(entry.key for entry in ERRORS.values() if isinstance(entry.code, str))


class BaiduError(VendorError):
    """An error of this dialect, named by a key of ERRORS (no other can be raised)."""

    table = ERRORS


def error_code_for(exc: BaseException) -> int | str:
    """Any exception -> the code its answer carries (error_code, or the OAuth error), for metrics and logs."""
    return ERRORS.code_for(exc)
