"""Real request bodies for each dialect, signed the way the vendors' SDKs sign them.

`build_request(dialect, image, creds, host)` returns (method, path, headers, body)
for one bank card read; `outcome(dialect, status, body)` says whether the answer
is a success and which vendor code it carries, `answered_number` which number it read. Credentials come from the
gateway's own TOML file (`Credentials.from_config`): the first key of each
vendor is used; a vendor without one is sent unsigned (served only when the
gateway allows unsigned requests, i.e. bound to loopback).

Requests are signed by the adapters' own signers (adapters/<vendor>_auth.py: Tencent
TC3-HMAC-SHA256, Huawei SDK-HMAC-SHA256, the myqcloud multi-use signature, Baidu
bce-auth-v1 or a token as its token endpoint issues it, Alibaba ACS3-HMAC-SHA256), the
same canonicalisation the gateway verifies with; tests/test_ops_bench.py checks
the gateway accepts what they sign.
"""
from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

from adapters import alibaba_auth, baidu_auth, huawei_auth, myqcloud_auth, tencent_auth

DIALECTS = ("tencent", "huawei", "facepp", "myqcloud", "hex", "baidu", "alibaba")
BAIDU_PATH = "/rest/2.0/ocr/v1/bankcard"
HUAWEI_PROJECT = "0123456789abcdef0123456789abcdef"
MYQCLOUD_VALID_S = 300
USER_AGENT = "cardgate-bench/0.1"


@dataclass
class Credentials:
    tencent: tuple[str, str] | None = None  # (SecretId, SecretKey)
    huawei: tuple[str, str] | None = None  # (AK, SK)
    huawei_token: str | None = None
    facepp: tuple[str, str] | None = None  # (api_key, api_secret)
    myqcloud: tuple[str, str, str, str] | None = None  # (appid, secret_id, secret_key, bucket)
    hex_token: tuple[str, str] | None = None  # (header name, token)
    baidu: tuple[str, str] | None = None  # bce-auth-v1 (AK, SK)
    baidu_token: str | None = None  # else an access token, minted as /oauth/2.0/token would
    alibaba: tuple[str, str] | None = None  # (AccessKeyId, AccessKeySecret)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config) -> "Credentials":
        """The first key of each vendor in the gateway's config (a Config, or the parsed TOML)."""
        from gateway.config import with_defaults

        dialects = with_defaults(config).dialects

        def first(table: dict):
            return next(iter(table.items()), None)

        creds = cls()
        creds.tencent = first(dialects["tencent"].credentials)
        creds.huawei = first(dialects["huawei"].credentials)
        creds.huawei_token = next(iter(dialects["huawei"].tokens), None)
        creds.facepp = first(dialects["facepp"].credentials)
        app = first(dialects["myqcloud"].apps)
        if app:
            appid, settings = app
            creds.myqcloud = (appid, settings.secret_id, settings.secret_key, next(iter(sorted(settings.buckets)), ""))
        hexcfg = dialects["hex"]
        token = hexcfg.token or next(iter(hexcfg.tokens), None)
        if token:
            creds.hex_token = (hexcfg.token_header, token)
        baidu_app = first(dialects["baidu"].apps)
        if baidu_app:
            app_id, keys = baidu_app
            if keys.access_key:
                creds.baidu = (keys.access_key, keys.secret_access_key)
            else:
                creds.baidu_token = baidu_auth.mint_token(app_id, keys.api_key, keys.secret_key, time.time())
        creds.alibaba = first(dialects["alibaba"].credentials)
        return creds


# --- requests --------------------------------------------------------------------------------


def build_request(dialect: str, image: bytes, creds: Credentials, host: str, now: float | None = None):
    """(method, path, headers, body) reading `image` in `dialect`; `host` is the Host header to sign."""
    now_i = int(now if now is not None else time.time())
    b64 = _base64(image)
    if dialect == "tencent":
        body = json.dumps({"ImageBase64": b64}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-TC-Action": "BankCardOCR",
            "X-TC-Version": "2018-11-19",
            "X-TC-Timestamp": str(now_i),
            "X-TC-Region": "ap-guangzhou",
        }
        if creds.tencent:
            signed = [("content-type", headers["Content-Type"]), ("host", host)]
            headers["Authorization"] = tencent_auth.sign_tc3(*creds.tencent, "POST", signed, body, now_i)
        return "POST", "/", headers, body
    if dialect == "huawei":
        path = f"/v2/{HUAWEI_PROJECT}/ocr/bankcard"
        body = json.dumps({"image": b64}).encode()
        headers = {"Content-Type": "application/json;charset=utf-8", "User-Agent": USER_AGENT}
        if creds.huawei:
            signed = {
                **headers,
                "Host": host,
                "X-Project-Id": HUAWEI_PROJECT,
                "X-Sdk-Date": huawei_auth.sdk_date(now_i),
            }
            headers = {k: v for k, v in signed.items() if k != "Host"}
            headers["Authorization"] = huawei_auth.sign_aksk(*creds.huawei, "POST", path, "", list(signed.items()), body)
        elif creds.huawei_token:
            headers["X-Auth-Token"] = creds.huawei_token
        return "POST", path, headers, body
    if dialect == "facepp":
        fields = {"image_base64": b64}
        if creds.facepp:
            fields = {"api_key": creds.facepp[0], "api_secret": creds.facepp[1], **fields}
        body = _urlencoded(tuple(fields.items()))
        return "POST", "/cardpp/v1/ocrbankcard", {"Content-Type": "application/x-www-form-urlencoded"}, body
    if dialect == "myqcloud":
        appid, bucket = (creds.myqcloud[0], creds.myqcloud[3]) if creds.myqcloud else ("1250000000", "")
        fields = {"appid": appid, "image": b64}
        if bucket:
            fields["bucket"] = bucket
        headers = {"Content-Type": "application/json"}
        if creds.myqcloud:
            appid, secret_id, secret_key = creds.myqcloud[:3]
            headers["Authorization"] = myqcloud_auth.sign(appid, bucket, secret_id, secret_key, now_i, MYQCLOUD_VALID_S)
        return "POST", "/ocr/bankcard", headers, json.dumps(fields).encode()
    if dialect == "hex":
        headers = {"Content-Type": "application/json"}
        if creds.hex_token:
            headers[creds.hex_token[0]] = creds.hex_token[1]
        body = json.dumps({"image": b64, "session_id": uuid.uuid4().hex[:12]}).encode()
        return "POST", "/hex/ocrapi/creditcardocr", headers, body
    if dialect == "baidu":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        query = "aipSdk=python"
        if creds.baidu:
            headers["x-bce-date"] = baidu_auth.bce_timestamp(now_i)
            signed = {"host": host, "x-bce-date": headers["x-bce-date"]}
            headers["Authorization"] = baidu_auth.sign(*creds.baidu, "POST", BAIDU_PATH, query, signed,
                                                       ["host", "x-bce-date"], now_i)
        elif creds.baidu_token:
            query += "&access_token=" + creds.baidu_token
        return "POST", f"{BAIDU_PATH}?{query}", headers, _urlencoded((("image", b64),))
    if dialect == "alibaba":
        headers = {
            "content-type": "application/octet-stream",
            "x-acs-action": "RecognizeBankCard",
            "x-acs-version": "2021-07-07",
            "x-acs-date": alibaba_auth.acs_date(now_i),
            "x-acs-signature-nonce": uuid.uuid4().hex,
        }
        if creds.alibaba:
            headers = alibaba_auth.sign(*creds.alibaba, "POST", "/", "", {**headers, "host": host}, image)
            del headers["host"]  # sent by the HTTP client, as signed
        return "POST", "/", headers, image
    raise ValueError(f"unknown dialect {dialect!r}")


# The load generator shares the gateway's cores, so each image is encoded once: a Face++ form
# body (urlencode of a 1 MP photo's base64, in pure Python) took 8.5 ms of CPU per request, more
# than the gateway's own work on it. Bodies with nothing per request in them are kept whole;
# signatures and timestamps are still made per request.
@functools.lru_cache(maxsize=256)
def _base64(image: bytes) -> str:
    return base64.b64encode(image).decode()


@functools.lru_cache(maxsize=256)
def _urlencoded(fields: tuple[tuple[str, str], ...]) -> bytes:
    return urlencode(fields).encode()


def outcome(dialect: str, status: int, body: bytes) -> tuple[bool, str]:
    """(success, vendor code) of one answer."""
    try:
        data = json.loads(body)
    except ValueError:
        return False, f"http{status}"
    if dialect == "tencent":
        error = (data.get("Response") or {}).get("Error")
        return (error is None and status == 200), (error or {}).get("Code", "ok")
    if dialect == "huawei":
        return status == 200 and "result" in data, data.get("error_code", "ok")
    if dialect == "facepp":
        if status == 200 and "bank_cards" in data:  # no card found is a 200 with an empty list
            return (True, "ok") if data["bank_cards"] else (False, "no_bank_card")
        return False, str(data.get("error_message", f"http{status}")).split(":")[0]
    if dialect == "myqcloud":
        code = data.get("code")
        return code == 0, "ok" if code == 0 else str(code)
    if dialect == "hex":
        code = data.get("errorcode")
        return code == 0, "ok" if code == 0 else str(code)
    if dialect == "baidu":  # every answer is a 200: the error is in the body
        return "result" in data and "error_code" not in data, str(data.get("error_code", "ok"))
    if dialect == "alibaba":
        return status == 200 and "Data" in data, data.get("Code", "ok")
    raise ValueError(dialect)


def answered_number(dialect: str, status: int, body: bytes) -> str | None:
    """The card number (digits only) a successful answer carries; None for any other answer."""
    if not outcome(dialect, status, body)[0]:
        return None
    data = json.loads(body)
    try:
        if dialect == "tencent":
            number = data["Response"]["CardNo"]
        elif dialect == "huawei":
            number = data["result"]["card_number"]
        elif dialect == "facepp":
            number = data["bank_cards"][0]["number"]
        elif dialect in ("myqcloud", "hex"):
            items = data["data"]["items"] if dialect == "myqcloud" else data["items"]
            number = next(item["itemstring"] for item in items if item["item"] == "卡号")
        elif dialect == "baidu":
            number = data["result"]["bank_card_number"]
        elif dialect == "alibaba":
            number = json.loads(data["Data"])["data"]["cardNumber"]
        else:
            raise ValueError(dialect)
    except (KeyError, IndexError, StopIteration, TypeError, ValueError):
        return None
    digits = "".join(ch for ch in str(number) if ch.isdigit())
    return digits or None


# Each vendor's documented throttling answer (what the gateway sends when the engine queue is full).
BUSY_CODES = {
    "tencent": {"RequestLimitExceeded"},
    "huawei": {"ModelArts.4401", "APIG.0308"},
    "facepp": {"CONCURRENCY_LIMIT_EXCEEDED"},
    "myqcloud": {"15"},
    "hex": {"-5208"},
    "baidu": {"18"},
    "alibaba": {"Throttling", "Throttling.User"},
}
