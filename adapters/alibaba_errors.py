"""Alibaba's codes: the ocr-api table and the POP gateway's common codes (spec §6).
"""
from __future__ import annotations

from adapters.base import VendorError
from adapters.error_table import ErrorEntry, ErrorTable
from core.failures import Failure

ERRORS = ErrorTable([
    ErrorEntry("MissingSignature", 400, "Signature is mandatory for this action."),
    ErrorEntry("IncompleteSignature", 400, "The request signature does not conform to Aliyun standards."),
    ErrorEntry("InvalidSignatureMethod", 400, "Specified signature method is not valid."),
    ErrorEntry("MissingSignatureNonce", 400, "SignatureNonce is mandatory for this action."),
    ErrorEntry("InvalidTimeStamp.Format", 400, "Specified time stamp or date value is not well formatted."),
    ErrorEntry("InvalidTimeStamp.Expired", 400, "Specified time stamp or date value is expired."),
    ErrorEntry("SignatureNonceUsed", 400, "Specified signature nonce was used already."),
    ErrorEntry("InvalidAccessKeyId.NotFound", 404, "Specified access key is not found."),
    ErrorEntry("SignatureDoesNotMatch", 400, "Specified signature does not match our calculation."),
    ErrorEntry("invalidStsToken", 400, "The STS token is invalid."),
    ErrorEntry("MissingAction", 400, "Action is mandatory for this request."),
    ErrorEntry("MissingVersion", 400, "Version is mandatory for this request."),
    ErrorEntry("InvalidApi.NotFound", 404, "Specified api is not found, please check your url and method.",
               failures=(Failure.NOT_FOUND,)),
    ErrorEntry("InvalidVersion", 400, "Specified parameter Version is not valid."),
    ErrorEntry("Throttling", 400, "Request was denied due to request throttling.", failures=(Failure.BUSY,)),
    ErrorEntry("Throttling.User", 400, "Request was denied due to user flow control.",
               failures=(Failure.RATE_LIMITED,)),
    ErrorEntry("imageUrlOrBodyEmpty", 400, "The image url or body is empty."),
    ErrorEntry("IllegalImageUrl", 400, "The image url is illegal or cannot be downloaded.",
               failures=(Failure.DOWNLOAD_FAILED,)),
    # BODY_TIMEOUT: the body is the image, and it stopped arriving
    ErrorEntry("imageTimeOut", 400, "Downloading the image timed out.",
               failures=(Failure.BODY_TIMEOUT, Failure.DOWNLOAD_TIMEOUT)),
    ErrorEntry("notSafeImageUrl", 400, "The image url is not safe.", failures=(Failure.DOWNLOAD_FORBIDDEN,)),
    ErrorEntry("exceededImageUrlLength", 400, "The image url must not be longer than 2048 characters."),
    ErrorEntry("exceededImageContent", 413, "The image must not be larger than 10MB.",
               failures=(Failure.BODY_TOO_LARGE, Failure.IMAGE_BYTES_TOO_LARGE, Failure.DOWNLOAD_TOO_LARGE)),
    ErrorEntry("unsupportedImageFormat", 415, "The image content is broken or its format is not supported.",
               failures=(Failure.UNSUPPORTED_FORMAT, Failure.IMAGE_UNDECODABLE)),
    ErrorEntry("illegalImageSize", 416, "The image size must not be less than 15px or greater than 8192px.",
               failures=(Failure.IMAGE_TOO_LARGE, Failure.IMAGE_TOO_SMALL)),
    ErrorEntry("illegalImageContent", 400, "The image does not contain the required content.",
               failures=(Failure.NUMBER_UNREADABLE, Failure.BLURRED)),
    ErrorEntry("unmatchedImageType", 400, "The image does not match the API: no bank card found.",
               failures=(Failure.NO_CARD,)),
    ErrorEntry("algorithmError", 503, "The recognition service failed, please try again.",
               failures=(Failure.ENGINE_FAILED,)),
    ErrorEntry("ServiceUnavailable", 503, "The request has failed due to a temporary failure of the server.",
               failures=(Failure.DRAINING, Failure.REPLAY_STORE_UNAVAILABLE)),
    ErrorEntry("InternalError", 500, "The request processing has failed due to some unknown error.",
               failures=(Failure.BAD_JSON, Failure.BAD_BASE64)),
], fallback="InternalError")


class AlibabaError(VendorError):
    """An error of this dialect, named by a key of ERRORS (no other can be raised)."""

    table = ERRORS


def error_code_for(exc: BaseException) -> int | str:
    """Any exception -> the code its answer carries (Code), for metrics and logs."""
    return ERRORS.code_for(exc)
