"""Huawei's OCR error table (OCR "Error Codes" page: AIS.*, ModelArts.*, APIG.*). The page
gives no per-code status; these are the statuses the services answer with (4xx for client
faults, 429 throttling).
"""
from __future__ import annotations

from adapters.base import VendorError
from adapters.error_table import ErrorEntry, ErrorTable
from core.failures import Failure

ERRORS = ErrorTable([
    ErrorEntry("AIS.0101", 400, "The input parameter is invalid."),
    # BAD_BASE64: the doc: "not a Base64 encoded string" is AIS.0102
    ErrorEntry("AIS.0102", 400, "The image format is not supported.",
               failures=(Failure.BAD_BASE64, Failure.UNSUPPORTED_FORMAT, Failure.IMAGE_UNDECODABLE)),
    ErrorEntry("AIS.0103", 400, "The image size does not meet the requirements.",
               failures=(Failure.IMAGE_BYTES_TOO_LARGE, Failure.DOWNLOAD_TOO_LARGE, Failure.IMAGE_TOO_LARGE,
                         Failure.IMAGE_TOO_SMALL)),
    ErrorEntry("AIS.0104", 400, "The image is not supported or the image quality is poor.",
               failures=(Failure.NO_CARD, Failure.NUMBER_UNREADABLE, Failure.BLURRED)),
    ErrorEntry("AIS.0105", 400, "Recognition failed.", failures=(Failure.ENGINE_FAILED,)),
    ErrorEntry("ModelArts.4104", 413, "Invalid Request Content Length.", failures=(Failure.BODY_TOO_LARGE,)),
    # BODY_TIMEOUT: a body that stopped arriving is as a cut-off JSON body
    ErrorEntry("ModelArts.4105", 400, "The JSON format of the input data is incorrect.",
               failures=(Failure.BODY_TIMEOUT, Failure.BAD_JSON)),
    ErrorEntry("ModelArts.4401", 429, "Max concurrency error.", failures=(Failure.BUSY,)),
    ErrorEntry("ModelArts.4403", 503, "Backend service unavailable error.",
               failures=(Failure.DRAINING, Failure.REPLAY_STORE_UNAVAILABLE)),
    ErrorEntry("ModelArts.4505", 500, "Backend service internal error."),
    ErrorEntry("ModelArts.4601", 400, "The URL is not allowed.", failures=(Failure.DOWNLOAD_FORBIDDEN,)),
    # DOWNLOAD_FAILED: timeouts included
    ErrorEntry("ModelArts.4603", 400, "Obtaining the file from the URL failed.",
               failures=(Failure.DOWNLOAD_FAILED, Failure.DOWNLOAD_TIMEOUT)),
    ErrorEntry("APIG.0101", 404, "The API does not exist or has not been published in the environment.",
               failures=(Failure.NOT_FOUND,)),
    ErrorEntry("APIG.0301", 401, "Incorrect IAM authentication information."),
    ErrorEntry("APIG.0308", 429, "The throttling threshold has been reached: policy user over ratelimit,limit:XX,time:1 minute.",
               failures=(Failure.RATE_LIMITED,)),
], fallback="ModelArts.4505")


class HuaweiError(VendorError):
    """An error of this dialect, named by a key of ERRORS (no other can be raised)."""

    table = ERRORS


def error_code_for(exc: BaseException) -> int | str:
    """Any exception -> the code its answer carries (error_code), for metrics and logs."""
    return ERRORS.code_for(exc)
