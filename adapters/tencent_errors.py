"""Tencent's codes for BankCardOCR (its own table plus the common codes it can answer),
each with its zh-CN and en-US message: X-TC-Language picks one. Every answer is HTTP 200.

Codes no request can reach here (FailedOperation.UnOpenError, ResourcesSoldOut.ChargeStatusException:
activation and billing states a self-hosted gateway does not have) stay so that the table is whole.
"""
from __future__ import annotations

from adapters.base import VendorError
from adapters.error_table import ErrorEntry, ErrorTable
from core.failures import Failure

ERRORS = ErrorTable([
    ErrorEntry("AuthFailure.InvalidAuthorization", 200, "请求头部的 Authorization 不符合腾讯云标准。",
               message_en="Authorization in the request header is invalid."),
    ErrorEntry("AuthFailure.SecretIdNotFound", 200, "密钥不存在。请检查密钥是否已被删除或者禁用，以及密钥是否填写正确。",
               message_en="Key does not exist. Check if the key has been deleted or disabled, and if it is correctly entered."),
    ErrorEntry("AuthFailure.SignatureExpire", 200, "签名过期。Timestamp 和服务器时间相差不得超过五分钟，请检查本地时间是否和标准时间同步。",
               message_en="Signature expired. Timestamp and server time cannot differ by more than five minutes."),
    ErrorEntry("AuthFailure.SignatureFailure", 200, "签名错误。签名计算错误，请对照调用方式中的签名方法文档检查签名计算过程。",
               message_en="The provided credentials could not be validated. Please check your signature is correct."),
    ErrorEntry("AuthFailure.TokenFailure", 200, "token 错误。", message_en="Token error."),
    ErrorEntry("InvalidAction", 200, "接口不存在。",
               failures=(Failure.NOT_FOUND,),
               message_en="The requested action does not exist."),
    ErrorEntry("NoSuchVersion", 200, "接口版本不存在。", message_en="The API version does not exist."),
    ErrorEntry("MissingParameter", 200, "缺少参数错误。", message_en="A required parameter is missing."),
    # BODY_TIMEOUT: no timeout code is documented: as a cut-off body
    ErrorEntry("InvalidParameter", 200, "参数错误（包括参数格式、类型等错误）。",
               failures=(Failure.BODY_TIMEOUT, Failure.BAD_JSON),
               message_en="Incorrect parameter (format, type, etc.)."),
    # DRAINING: retryable: another instance will answer
    ErrorEntry("RequestLimitExceeded", 200, "请求的次数超过了频率限制。",
               failures=(Failure.BUSY, Failure.RATE_LIMITED, Failure.DRAINING, Failure.REPLAY_STORE_UNAVAILABLE),
               message_en="The number of requests exceeds the frequency limit."),
    ErrorEntry("RequestSizeLimitExceeded", 200, "请求包超过限制大小。",
               failures=(Failure.BODY_TOO_LARGE,),
               message_en="The request size exceeds the limit."),
    ErrorEntry("InternalError", 200, "内部错误。", message_en="Internal error."),
    # DOWNLOAD_FAILED: timeout, refused address, HTTP error
    ErrorEntry("FailedOperation.DownLoadError", 200, "文件下载失败。",
               failures=(Failure.DOWNLOAD_FAILED, Failure.DOWNLOAD_TIMEOUT, Failure.DOWNLOAD_FORBIDDEN),
               message_en="File download failed."),
    ErrorEntry("FailedOperation.IllegalBankCardError", 200, "银行卡信息非法。", message_en="Invalid bank card information."),
    # UNSUPPORTED_FORMAT: GIF: "not supported"
    ErrorEntry("FailedOperation.ImageDecodeFailed", 200, "图片解码失败。",
               failures=(Failure.UNSUPPORTED_FORMAT, Failure.IMAGE_UNDECODABLE),
               message_en="Image decoding failed."),
    ErrorEntry("FailedOperation.NoBankCardError", 200, "非银行卡。",
               failures=(Failure.NO_CARD,),
               message_en="No bank card found."),
    ErrorEntry("FailedOperation.OcrFailed", 200, "OCR识别失败。",
               failures=(Failure.NUMBER_UNREADABLE, Failure.BLURRED),
               message_en="OCR failed."),
    ErrorEntry("FailedOperation.UnKnowError", 200, "未知错误。",
               failures=(Failure.ENGINE_FAILED,),
               message_en="Unknown error."),
    ErrorEntry("FailedOperation.UnOpenError", 200, "服务未开通。", message_en="The service is not activated."),
    ErrorEntry("InvalidParameter.EngineImageDecodeFailed", 200, "图片解码失败。",
               failures=(Failure.BAD_BASE64,),
               message_en="Image decoding failed."),
    ErrorEntry("InvalidParameterValue.InvalidParameterValueLimit", 200, "参数值错误。",
               failures=(Failure.IMAGE_TOO_SMALL,),
               message_en="Incorrect parameter value."),
    ErrorEntry("LimitExceeded.TooLargeFileError", 200, "文件内容太大。",
               failures=(Failure.IMAGE_BYTES_TOO_LARGE, Failure.DOWNLOAD_TOO_LARGE, Failure.IMAGE_TOO_LARGE),
               message_en="The file is too large."),
    ErrorEntry("ResourcesSoldOut.ChargeStatusException", 200, "计费状态异常。", message_en="Exceptional billing status."),
], fallback="InternalError")


class TencentError(VendorError):
    """An error of this dialect, named by a key of ERRORS (no other can be raised)."""

    table = ERRORS


def error_code_for(exc: BaseException) -> int | str:
    """Any exception -> the code its answer carries (Response.Error.Code), for metrics and logs."""
    return ERRORS.code_for(exc)
