"""Huawei Cloud OCR v2 bank card dialect.

Unit tests of the SDK-HMAC-SHA256 verifier (against a captured SDK request and
against requests signed by the SDK's own Signer), of parsing and rendering; then
end to end: huaweicloudsdkocr's OcrClient against a live gateway on 127.0.0.1,
redirected by HUAWEICLOUD_SDK_REGION_OCR_CN_NORTH_4 and by with_endpoints, plus
the X-Auth-Token path with plain httpx.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time

import httpx
import pytest

from adapters import huawei
from adapters.base import VendorError
from core.request import EngineCall, ImageSource, IncomingRequest
from engine import errors as engine_errors
from engine.types import ReadOptions
from core import errors as gw
from gateway.app import create_app
from tests.fakes import make_reading
from tests.test_huawei_support import CheckingEngine, photo, real_engine_and_card, truncated_jpeg

hw_core = pytest.importorskip("huaweicloudsdkcore")
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException  # noqa: E402
from huaweicloudsdkcore.http.http_handler import HttpHandler  # noqa: E402
from huaweicloudsdkcore.region.cache import EnvRegionCache  # noqa: E402
from huaweicloudsdkcore.sdk_request import SdkRequest  # noqa: E402
from huaweicloudsdkcore.signer.signer import Signer  # noqa: E402

ocr = pytest.importorskip("huaweicloudsdkocr.v1")
from huaweicloudsdkocr.v1 import (  # noqa: E402
    BankcardRequestBody,
    OcrClient,
    RecognizeBankcardRequest,
    RecognizeBankcardResponse,
)
from huaweicloudsdkocr.v1.region.ocr_region import OcrRegion  # noqa: E402

AK, SK = "HWTESTAK00000000000001", "huawei-test-secret-key"
TOKEN = "opaque-token-1"
PROJECT = "0123456789abcdef0123456789abcdef"
SETTINGS = {"credentials": {AK: SK}, "tokens": [TOKEN]}
UA = "huaweicloud-usdk-python/3.0; os/Linux python/3.11.7 impl/CPython; app/test"
PATH = f"/v2/{PROJECT}/ocr/bankcard"


# --- the verifier -----------------------------------------------------------------------


def test_canonical_request_matches_the_captured_sdk_call():
    """captures/huawei_bankcard.http: our CanonicalRequest hashes to the one in its StringToSign."""
    ua = (
        "huaweicloud-usdk-python/3.0; os/Linux##1_SMP_PREEMPT_DYNAMIC_@0#x86_64 python/3.11.7 "
        "impl/CPython; app/10c524d7-6929-45bb-8b58-0d83c4072701"
    )
    req = IncomingRequest(
        method="POST",
        path=PATH,
        raw_path=PATH.encode(),
        query_string=b"",
        headers=[
            ("user-agent", ua),
            ("accept-encoding", "gzip, deflate"),
            ("accept", "*/*"),
            ("connection", "keep-alive"),
            ("content-type", "application/json;charset=utf-8"),
            ("x-project-id", PROJECT),
            ("x-sdk-date", "20261121T192231Z"),
            ("host", "127.0.0.1:46687"),
            ("content-length", "69"),
        ],
        body=b'{"image": "/9j/4AAQSkZJRgABAQAAAQABAABiYW5rY2FyZC10ZXN0LWltYWdl/9k="}',
    )
    signed = "content-type;host;user-agent;x-project-id;x-sdk-date".split(";")
    canonical = huawei.canonical_request(req, signed)
    assert canonical.split(b"\n")[1] == PATH.encode() + b"/"  # the canonical URI always ends in "/"
    assert hashlib.sha256(canonical).hexdigest() == "113546d284b6c3c0f952adcb369282105bcbd43aa05b8e93ba2a63fa8c867e20"
    assert huawei.string_to_sign("20261121T192231Z", canonical) == (
        b"SDK-HMAC-SHA256\n20261121T192231Z\n113546d284b6c3c0f952adcb369282105bcbd43aa05b8e93ba2a63fa8c867e20"
    )


def sdk_signed(
    body: bytes = b'{"image": "AAAA"}',
    *,
    ak: str = AK,
    sk: str = SK,
    host: str = "127.0.0.1:8080",
    path: str = PATH,
    query: list | None = None,
    when: float | None = None,
) -> IncomingRequest:
    """A request signed by the SDK's own Signer, as the gateway would receive it."""
    headers = {"Content-Type": "application/json;charset=utf-8", "User-Agent": UA, "X-Project-Id": PROJECT}
    if when is not None:
        headers["X-Sdk-Date"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    request = SdkRequest(
        method="POST", schema="http", host=host, resource_path=path,
        query_params=list(query or []), header_params=headers, body=body,
    )
    Signer(BasicCredentials(ak, sk)).sign(request)
    _, _, query_string = request.uri.partition("?")
    return IncomingRequest(
        method="POST",
        path=path,
        raw_path=path.encode(),
        query_string=query_string.encode(),
        headers=[(k.lower(), str(v)) for k, v in request.header_params.items()],
        body=request.body,
    )


NOW = 1_795_000_000.0
CREDS = {AK: SK}


def test_verify_accepts_the_sdk_signature():
    assert huawei.verify_aksk(sdk_signed(when=NOW), CREDS, NOW) == AK
    # the prefixed path and a query string are signed and verified as sent
    req = sdk_signed(path=f"/huawei/v2/{PROJECT}/ocr/bankcard", query=[("b", "x y"), ("a", "1")], when=NOW)
    assert huawei.verify_aksk(req, CREDS, NOW) == AK


def _auth_fails(req: IncomingRequest, now: float = NOW, creds: dict = CREDS) -> str:
    with pytest.raises(VendorError) as info:
        huawei.verify_aksk(req, creds, now)
    assert info.value.code == "APIG.0301"
    return info.value.detail


def _with_header(req: IncomingRequest, name: str, value: str) -> IncomingRequest:
    req.headers = [(k, value if k == name else v) for k, v in req.headers]
    return req


def test_verify_rejects_tampering_and_bad_keys():
    req = sdk_signed(when=NOW)
    req.body = req.body.replace(b"AAAA", b"AAAB")
    assert _auth_fails(req) == "verify aksk signature fail"
    assert _auth_fails(_with_header(sdk_signed(when=NOW), "host", "127.0.0.1:9999")) == "verify aksk signature fail"
    assert _auth_fails(_with_header(sdk_signed(when=NOW), "user-agent", "curl/8")) == "verify aksk signature fail"
    tampered_query = sdk_signed(query=[("a", "1")], when=NOW)
    tampered_query.query_string = b"a=2"
    assert _auth_fails(tampered_query) == "verify aksk signature fail"
    assert _auth_fails(sdk_signed(sk="wrong-secret", when=NOW)) == "verify aksk signature fail"
    assert _auth_fails(sdk_signed(ak="HWUNKNOWNAK", when=NOW)) == "verify aksk signature fail"


def test_verify_enforces_the_15_minute_window():
    assert huawei.verify_aksk(sdk_signed(when=NOW - 14 * 60), CREDS, NOW) == AK
    assert huawei.verify_aksk(sdk_signed(when=NOW + 14 * 60), CREDS, NOW) == AK
    assert _auth_fails(sdk_signed(when=NOW - 16 * 60)) == "request expired"
    assert _auth_fails(sdk_signed(when=NOW + 16 * 60)) == "request expired"
    assert _auth_fails(_with_header(sdk_signed(when=NOW), "x-sdk-date", "2026-11-21T19:22:31Z")) == "invalid x-sdk-date"
    req = sdk_signed(when=NOW)
    arabic_indic_digit = req.header("x-sdk-date")[:-2] + chr(0x0660 + int(req.header("x-sdk-date")[-2])) + "Z"
    assert _auth_fails(_with_header(req, "x-sdk-date", arabic_indic_digit)) == "invalid x-sdk-date"


def test_verify_refuses_unsigned_payload_and_unsigned_date():
    req = sdk_signed(when=NOW)
    req.headers.append(("x-sdk-content-sha256", "UNSIGNED-PAYLOAD"))
    assert _auth_fails(req) == "verify aksk signature fail"
    req = sdk_signed(when=NOW)
    auth = req.header("authorization").replace(";x-sdk-date", "")
    assert _auth_fails(_with_header(req, "authorization", auth)) == "verify aksk signature fail"
    req = sdk_signed(when=NOW)
    auth = req.header("authorization").replace("SDK-HMAC-SHA256", "V11-HMAC-SHA256")
    assert _auth_fails(_with_header(req, "authorization", auth)) == "unsupported signature algorithm"


def test_authenticate_dispatch_and_open_mode():
    dialect = huawei.create(SETTINGS, allow_unsigned=False)
    token_req = IncomingRequest("POST", PATH, PATH.encode(), b"", [("x-auth-token", TOKEN)], b"{}")
    assert dialect.authenticate(token_req, NOW) == "token"
    with pytest.raises(VendorError, match="decrypt token fail"):
        dialect.authenticate(_with_header(token_req, "x-auth-token", "other"), NOW)
    with pytest.raises(VendorError, match="x-auth-token not found"):
        dialect.authenticate(IncomingRequest("POST", PATH, PATH.encode(), b"", [], b"{}"), NOW)
    assert dialect.authenticate(sdk_signed(when=NOW), NOW) == AK
    # nothing configured: open only when unsigned requests are allowed
    assert huawei.create({}, allow_unsigned=True).authenticate(token_req, NOW) is None
    with pytest.raises(VendorError):
        huawei.create({}, allow_unsigned=False).authenticate(IncomingRequest("POST", PATH, PATH.encode(), b"", [], b""), NOW)


# --- parse and render ----------------------------------------------------------------------


def _parse(body) -> EngineCall:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return huawei.create({}, True).parse(IncomingRequest("POST", PATH, PATH.encode(), b"", [], raw))


def _parse_code(body) -> str:
    with pytest.raises(VendorError) as info:
        _parse(body)
    return info.value.code


def test_parse_image_url_and_options():
    jpeg = photo()
    call = _parse({"image": base64.b64encode(jpeg).decode()})
    assert call.image == ImageSource(data=jpeg) and call.context["return_text_location"] is False
    assert call.options.min_side == 15 and call.options.max_pixels == 8192 * 8192
    call = _parse({"url": "https://bucket.obs.example.com/card.jpg", "return_text_location": True})
    assert call.image == ImageSource(url="https://bucket.obs.example.com/card.jpg")
    assert call.context["return_text_location"] is True


def test_parse_errors():
    assert _parse_code({"image": "AAAA", "url": "https://example.com/a.jpg"}) == "AIS.0101"  # one or the other
    assert _parse_code({}) == "AIS.0101"
    assert _parse_code({"image": ""}) == "AIS.0101"
    assert _parse_code({"image": 12}) == "AIS.0101"
    assert _parse_code({"image": "AAAA", "return_text_location": "yes"}) == "AIS.0101"
    assert _parse_code(b"{not json") == "ModelArts.4105"
    assert _parse_code(b"[1, 2]") == "ModelArts.4105"
    assert _parse_code(b"") == "ModelArts.4105"
    with pytest.raises(gw.BadBase64Error):
        _parse({"image": "not base64!"})


def _render(reading, want_location=False):
    call = EngineCall(image=ImageSource(data=b"x"), options=ReadOptions(), context={"return_text_location": want_location})
    response = huawei.create({}, True).render(call, reading, "0123abcd", 12.0)
    assert response.status_code == 200 and response.headers["x-request-id"] == "0123abcd"
    return json.loads(response.body)


def test_render_success_shape():
    body = _render(make_reading("6225760088888888", expiry="08/22"))
    assert body == {
        "result": {
            "bank_name": "招商银行",
            "card_number": "6225 7600 8888 8888",
            "issue_date": "",
            "expiry_date": "08/22",
            "type": "信用卡",  # the BIN table's 贷记卡, in Huawei's word
            "confidence": {"bank_name": 0.98, "card_number": 0.98, "issue_date": 0, "expiry_date": 0.96, "type": 0.98},
        }
    }
    # a 19-digit number keeps its printed grouping; an unknown bank leaves bank_name and type empty
    body = _render(make_reading("6217000010030385457", printed="6217 0000 1003 0385 457", bank=None, expiry=None))
    result = body["result"]
    assert result["card_number"] == "6217 0000 1003 0385 457"
    assert (result["bank_name"], result["type"], result["expiry_date"]) == ("", "", "")
    assert result["confidence"]["bank_name"] == 0 and "text_location" not in result


def test_render_text_location():
    result = _render(make_reading(), want_location=True)["result"]
    assert result["text_location"]["card_number"] == [[212, 452], [1004, 458], [1003, 512], [211, 506]]
    assert result["text_location"]["expiry_date"] == [[520, 560], [610, 561], [610, 592], [520, 591]]


@pytest.mark.parametrize(
    "exc, status, code",
    [
        (VendorError("AIS.0101"), 400, "AIS.0101"),
        (VendorError("NOT.A.CODE"), 500, "ModelArts.4505"),
        (gw.BodyTooLargeError(), 413, "ModelArts.4104"),
        (gw.BadBase64Error(), 400, "AIS.0102"),
        (gw.ImageTooLargeBytesError(), 400, "AIS.0103"),
        (gw.UnsupportedFormatError("gif"), 400, "AIS.0102"),
        (gw.FetchTimeoutError("slow"), 400, "ModelArts.4603"),
        (gw.FetchForbiddenError("private"), 400, "ModelArts.4601"),
        (gw.FetchTooLargeError("big"), 400, "AIS.0103"),
        (gw.FetchError("404"), 400, "ModelArts.4603"),
        (gw.EngineBusyError(), 429, "ModelArts.4401"),
        (gw.RateLimitedError(), 429, "APIG.0308"),
        (gw.RouteNotFoundError(), 404, "APIG.0101"),
        (gw.ShuttingDownError(), 503, "ModelArts.4403"),
        (engine_errors.ImageDecodeError(), 400, "AIS.0102"),
        (engine_errors.ImageTooLargeError(), 400, "AIS.0103"),
        (engine_errors.ImageTooSmallError(), 400, "AIS.0103"),
        (engine_errors.NoCardFoundError(), 400, "AIS.0104"),
        (engine_errors.NumberUnreadableError(), 400, "AIS.0104"),
        (engine_errors.ImageBlurredError(), 400, "AIS.0104"),
        (engine_errors.EngineError(), 400, "AIS.0105"),
        (RuntimeError("bug"), 500, "ModelArts.4505"),
    ],
)
def test_error_table(exc, status, code):
    response = huawei.create({}, True).render_error(exc, "rid42", None)
    body = json.loads(response.body)
    assert (response.status_code, body["error_code"]) == (status, code)
    assert body["error_msg"] == huawei.ERRORS[code].message and response.headers["x-request-id"] == "rid42"
    assert set(body) == {"error_code", "error_msg"}


def test_auth_error_message_names_only_fixed_reasons():
    dialect = huawei.create({}, True)
    body = json.loads(dialect.render_error(VendorError("APIG.0301", "decrypt token fail"), "r").body)
    assert body["error_msg"] == "Incorrect IAM authentication information: decrypt token fail"
    body = json.loads(dialect.render_error(VendorError("APIG.0301", "<script>"), "r").body)
    assert body["error_msg"] == "Incorrect IAM authentication information."


def test_routes_and_owned_paths():
    dialect = huawei.create({}, True)
    assert ("/v2/{project_id}/ocr/bankcard", ["POST"]) in dialect.routes()
    assert ("/huawei/v2/{project_id}/ocr/bankcard", ["POST"]) in dialect.routes()
    assert dialect.owns_path("/huawei/anything") and dialect.owns_path("/v2/pid/ocr/id-card")
    assert not dialect.owns_path("/cardpp/v1/ocrbankcard") and not dialect.owns_path("/")
    assert len(dialect.new_request_id()) == 32


# --- end to end with the real SDK ------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def engine():
    return CheckingEngine()


@pytest.fixture
def gateway(live_gateway, engine):
    """A live gateway serving only the Huawei dialect, with a clock the test can move."""
    clock = {"offset": 0.0}
    config = {"huawei": SETTINGS}
    app = create_app(
        config, engine, clock=lambda: time.time() + clock["offset"],
        allow_unsigned=False, dialects=[huawei.create(SETTINGS, allow_unsigned=False)],
    )
    base_url = live_gateway(app)
    return base_url, clock


def sdk_client(endpoint: str, *, ak: str = AK, sk: str = SK, handler: HttpHandler | None = None) -> OcrClient:
    builder = OcrClient.new_builder().with_credentials(BasicCredentials(ak, sk, PROJECT)).with_endpoints([endpoint])
    if handler is not None:
        builder = builder.with_http_handler(handler)
    return builder.build()


def recognize(client: OcrClient, **fields) -> RecognizeBankcardResponse:
    return client.recognize_bankcard(RecognizeBankcardRequest(body=BankcardRequestBody(**fields)))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_sdk_with_endpoints_reads_a_card(gateway, engine):
    base_url, _ = gateway
    jpeg = photo()
    response = recognize(sdk_client(base_url), image=b64(jpeg))
    assert isinstance(response, RecognizeBankcardResponse) and response.status_code == 200
    assert response.result.card_number == "6225 7600 8888 8888"
    assert response.result.bank_name == "招商银行" and response.result.type == "信用卡"
    assert response.result.expiry_date == "08/22" and float(response.result.confidence["card_number"]) == 0.98
    assert len(response.x_request_id) == 32
    assert engine.images == [jpeg]


def test_sdk_prefixed_endpoint_and_text_location(gateway):
    base_url, _ = gateway
    response = recognize(sdk_client(base_url + "/huawei"), image=b64(photo()), return_text_location=True)
    assert response.result.card_number == "6225 7600 8888 8888"
    assert response.result.text_location["card_number"][0] == [212, 452]


def test_sdk_redirected_by_region_environment_variable(gateway, monkeypatch):
    base_url, _ = gateway
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_OCR_CN_NORTH_4", base_url)
    EnvRegionCache()._value.clear()
    client = (
        OcrClient.new_builder()
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_region(OcrRegion.value_of("cn-north-4"))
        .build()
    )
    response = recognize(client, image=b64(photo()))
    assert response.result.card_number == "6225 7600 8888 8888"


def _sdk_error(call) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    assert len(info.value.request_id) == 32  # from our X-Request-Id header
    return info.value


def _tamper(fn) -> HttpHandler:
    """An SDK HttpHandler that changes the request after it was signed."""
    def handler(request, **_kw):
        fn(request)
    return HttpHandler().add_request_handler(handler)


def test_sdk_auth_failures(gateway):
    base_url, clock = gateway
    image = b64(photo())

    def body_tamper(request):
        request.body = request.body.replace(b'"image"', b'"image" ', 1)

    def host_rewrite(request):
        request.header_params["Host"] = "ocr.cn-north-4.myhuaweicloud.com"

    cases = [
        sdk_client(base_url, handler=_tamper(body_tamper)),
        sdk_client(base_url, handler=_tamper(host_rewrite)),
        sdk_client(base_url, ak="HWUNKNOWNAK000000001"),
        sdk_client(base_url, sk="not-the-secret"),
    ]
    for client in cases:
        error = _sdk_error(lambda: recognize(client, image=image))
        assert (error.status_code, error.error_code) == (401, "APIG.0301")
    clock["offset"] = 16 * 60  # the server's clock is 16 minutes ahead of the SDK's X-Sdk-Date
    error = _sdk_error(lambda: recognize(sdk_client(base_url), image=image))
    assert (error.status_code, error.error_code) == (401, "APIG.0301")
    assert error.error_msg == "Incorrect IAM authentication information: request expired"
    clock["offset"] = 14 * 60
    assert recognize(sdk_client(base_url), image=image).result.card_number


def test_sdk_bad_input_errors(gateway, engine):
    base_url, _ = gateway
    client = sdk_client(base_url)
    cases = [
        ({}, 400, "AIS.0101"),  # no image
        ({"image": b64(photo()), "url": "https://example.com/card.jpg"}, 400, "AIS.0101"),  # both
        ({"image": "bm90IGJhc2U2NA=!"}, 400, "AIS.0102"),  # bad base64
        ({"image": b64(truncated_jpeg())}, 400, "AIS.0102"),
        ({"image": b64(b"GIF89a" + b"\x01\x00\x01\x00" + b"\x00" * 40)}, 400, "AIS.0102"),
        ({"image": b64(photo(12, 40, ".png"))}, 400, "AIS.0103"),  # shorter side under 15 px
        ({"image": b64(photo(8200, 16, ".png"))}, 400, "AIS.0103"),  # longer side over 8192 px
        ({"url": "http://127.0.0.1:1/card.jpg"}, 400, "ModelArts.4601"),  # loopback URLs are refused
    ]
    for fields, status, code in cases:
        error = _sdk_error(lambda: recognize(client, **fields))
        assert (error.status_code, error.error_code) == (status, code), fields
        assert error.error_msg == huawei.ERRORS[code].message
    assert engine.calls == []  # none of them got as far as a reading


def test_sdk_oversize_body(gateway):
    base_url, _ = gateway
    oversize = "A" * (10 * 1024 * 1024 + 8192)
    error = _sdk_error(lambda: recognize(sdk_client(base_url), image=oversize))
    assert (error.status_code, error.error_code) == (413, "ModelArts.4104")


def test_sdk_engine_failures(live_gateway):
    def serve(engine):
        app = create_app({"huawei": SETTINGS}, engine, allow_unsigned=False,
                         dialects=[huawei.create(SETTINGS, allow_unsigned=False)])
        return sdk_client(live_gateway(app))

    error = _sdk_error(lambda: recognize(serve(CheckingEngine(error=engine_errors.NoCardFoundError())), image=b64(photo())))
    assert (error.status_code, error.error_code) == (400, "AIS.0104")
    with pytest.raises(ServerResponseException) as info:
        recognize(serve(CheckingEngine(error=RuntimeError("engine bug"))), image=b64(photo()))
    assert (info.value.status_code, info.value.error_code) == (500, "ModelArts.4505")


def test_x_auth_token_with_plain_http(gateway):
    base_url, _ = gateway
    url = f"{base_url}/v2/{PROJECT}/ocr/bankcard"
    body = {"image": b64(photo())}
    response = httpx.post(url, json=body, headers={"X-Auth-Token": TOKEN})
    assert response.status_code == 200 and len(response.headers["x-request-id"]) == 32
    assert response.json()["result"]["card_number"] == "6225 7600 8888 8888"
    response = httpx.post(url, json=body, headers={"X-Auth-Token": "MIINRwYJKoZIhvcNAQcCoIINODCCDTQ"})
    assert response.status_code == 401
    assert response.json() == {
        "error_code": "APIG.0301",
        "error_msg": "Incorrect IAM authentication information: decrypt token fail",
    }
    response = httpx.post(url, json=body)
    assert response.status_code == 401 and response.json()["error_code"] == "APIG.0301"
    # unknown API under the Huawei prefix, and the wrong method, answer in Huawei's shape
    response = httpx.post(f"{base_url}/huawei/v2/{PROJECT}/ocr/id-card", json=body, headers={"X-Auth-Token": TOKEN})
    assert response.status_code == 404 and response.json()["error_code"] == "APIG.0101"
    response = httpx.get(url, headers={"X-Auth-Token": TOKEN})
    assert response.status_code == 404 and response.json()["error_code"] == "APIG.0101"


def test_sdk_reads_a_real_card_with_the_real_engine(live_gateway):
    engine, image, number = real_engine_and_card()
    app = create_app({"huawei": SETTINGS}, engine, allow_unsigned=False,
                     dialects=[huawei.create(SETTINGS, allow_unsigned=False)])
    response = recognize(sdk_client(live_gateway(app)), image=b64(image))
    assert response.result.card_number.replace(" ", "") == number
    assert " " in response.result.card_number
