"""myqcloud's codes (the image OCR error page), keyed by the code as text; all are answered
with HTTP 200 but an unknown path or method, an HTTP-level 404 as the real front end answers it.
Code 0 is success, not an error: it is not in this table.
"""
from __future__ import annotations

from adapters.base import VendorError
from adapters.error_table import ErrorEntry, ErrorTable
from core.failures import Failure

ERRORS = ErrorTable([
    # BODY_TIMEOUT: 错误的请求: the request never came whole
    ErrorEntry(3, 200, "错误的请求", failures=(Failure.BODY_TIMEOUT, Failure.BAD_JSON)),
    ErrorEntry(4, 200, "签名为空"),
    ErrorEntry(5, 200, "签名串错误"),
    ErrorEntry(6, 200, "APPID/存储桶/URL不匹配"),
    ErrorEntry(7, 200, "签名编码失败（内部错误）"),
    ErrorEntry(8, 200, "签名解码失败（内部错误）"),
    ErrorEntry(9, 200, "签名过期"),
    ErrorEntry(10, 200, "APPID不存在"),
    ErrorEntry(11, 200, "SecretId不存在"),
    ErrorEntry(12, 200, "APPID不匹配"),
    ErrorEntry(13, 200, "重放攻击"),
    ErrorEntry(14, 200, "签名失败"),
    ErrorEntry(15, 200, "操作太频繁，触发频控", failures=(Failure.BUSY, Failure.RATE_LIMITED)),
    ErrorEntry(16, 200, "存储桶不存在"),
    ErrorEntry(17, 200, "URL为空"),
    ErrorEntry(18, 200, "没有图片或URL"),
    ErrorEntry(19, 200, "图片数过多"),
    ErrorEntry(20, 200, "图片过大",
               failures=(Failure.BODY_TOO_LARGE, Failure.IMAGE_BYTES_TOO_LARGE, Failure.DOWNLOAD_TOO_LARGE,
                         Failure.IMAGE_TOO_LARGE)),
    ErrorEntry(21, 200, "无效的参数"),
    ErrorEntry(200, 200, "内部打包失败"),
    ErrorEntry(201, 200, "内部解包失败"),
    ErrorEntry(202, 200, "内部链接失败", failures=(Failure.DRAINING, Failure.REPLAY_STORE_UNAVAILABLE)),
    ErrorEntry(203, 200, "内部处理超时"),
    # UNSUPPORTED_FORMAT: GIF: "不支持 .gif 类型的动图"
    ErrorEntry(-1102, 200, "SDK_IMAGE_DECODE_FAILED",
               failures=(Failure.BAD_BASE64, Failure.UNSUPPORTED_FORMAT, Failure.IMAGE_UNDECODABLE)),
    ErrorEntry(-1300, 200, "ERROR_IMAGE_EMPTY"),
    ErrorEntry(-1301, 200, "ERROR_PARAMETER_EMPTY"),
    ErrorEntry(-1304, 200, "ERROR_PARAMETER_TOO_LONG"),
    # DOWNLOAD_FAILED: timeout, refused address, HTTP error
    ErrorEntry(-1308, 200, "ERROR_DOWNLOAD_IMAGE_FAILED",
               failures=(Failure.DOWNLOAD_FAILED, Failure.DOWNLOAD_TIMEOUT, Failure.DOWNLOAD_FORBIDDEN)),
    ErrorEntry(-5208, 200, "OCR_SERVER_INTERN_ERROR", failures=(Failure.ENGINE_FAILED,)),
    ErrorEntry(-9010, 200, "CREDITCARD_OCR_PREPROCESS_ERROR", failures=(Failure.IMAGE_TOO_SMALL, Failure.NO_CARD)),
    ErrorEntry(-9011, 200, "CREDITCARD_OCR_RECOG_FAILED", failures=(Failure.NUMBER_UNREADABLE, Failure.BLURRED)),
    ErrorEntry(3, 404, "错误的请求", failures=(Failure.NOT_FOUND,), key="3.not_found"),
], fallback="-5208")


class MyqcloudError(VendorError):
    """An error of this dialect, named by a key of ERRORS (no other can be raised)."""

    table = ERRORS


def error_code_for(exc: BaseException) -> int | str:
    """Any exception -> the code its answer carries (code), for metrics and logs."""
    return ERRORS.code_for(exc)
