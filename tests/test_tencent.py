"""Tencent Cloud API 3.0 BankCardOCR dialect.

Unit tests of the TC3 and legacy verifiers (a captured SDK request as a known
vector, and requests signed by the SDK's own code), of rendering and of the
error table; then end to end: tencentcloud-sdk-python-ocr's OcrClient (TC3 POST
and GET, HmacSHA1, HmacSHA256) and CommonClient (X-TC-Language: en-US) against
a live gateway on 127.0.0.1, success and every documented error.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time

import httpx
import pytest
import respx

from adapters import tencent
from adapters.base import VendorError
from core.request import IncomingRequest
from engine import errors as engine_errors
from engine.types import BankInfo
from core import errors as gw
from gateway.app import create_app
from tests.fakes import GIF_BYTES, TINY_JPEG, FakeEngine, fake_card_image, make_reading, png_header
from tests.test_huawei_support import CheckingEngine, photo, truncated_jpeg
from tests.test_tencent_support import Clock, public_resolver, real_cards, real_engine

pytest.importorskip("tencentcloud.ocr")
from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.common_client import CommonClient  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException  # noqa: E402
from tencentcloud.common.http.request import RequestInternal  # noqa: E402
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.ocr.v20181119 import models, ocr_client  # noqa: E402

SECRET_ID = "AKIDcardgateTESTexampleEXAMPLE0001"
SECRET_KEY = "cardgate-tencent-test-secret"
CREDENTIALS = {SECRET_ID: SECRET_KEY}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NUMBER = "6225760088888883"  # the doc's example number with a valid Luhn digit
CARD_B64 = base64.b64encode(fake_card_image(NUMBER)).decode()
SIGN_METHODS = [("TC3-HMAC-SHA256", "POST"), ("TC3-HMAC-SHA256", "GET"), ("HmacSHA1", "POST"),
                ("HmacSHA1", "GET"), ("HmacSHA256", "POST"), ("HmacSHA256", "GET")]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# --- helpers -----------------------------------------------------------------------


def sdk_client(endpoint, *, sign_method="TC3-HMAC-SHA256", method="POST", secret_id=SECRET_ID,
               secret_key=SECRET_KEY, token=None, language="zh-CN", unsigned_payload=False):
    http = HttpProfile(protocol="http", endpoint=endpoint, reqMethod=method, reqTimeout=15)
    profile = ClientProfile(httpProfile=http, signMethod=sign_method, language=language)
    profile.unsignedPayload = unsigned_payload
    return ocr_client.OcrClient(credential.Credential(secret_id, secret_key, token), "ap-guangzhou", profile)


def read_card(client, **fields) -> models.BankCardOCRResponse:
    request = models.BankCardOCRRequest()
    request.from_json_string(json.dumps(fields))
    return client.BankCardOCR(request)


def sdk_error(client, **fields) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        read_card(client, **fields)
    err = info.value
    assert UUID4.match(err.requestId or ""), err  # every error carries our RequestId
    return err


def edit_before_send(client, edit) -> None:
    """Let `edit(RequestInternal)` change the SDK's signed request on its way out (tampering)."""
    send = client.request.send_request

    def edited(req):
        edit(req)
        return send(req)

    client.request.send_request = edited


def signed_request(endpoint, params, *, sign_method="TC3-HMAC-SHA256", method="POST", secret_key=SECRET_KEY):
    """The SDK's own signed request for `params`, not sent: (headers, query, body)."""
    client = sdk_client(endpoint, sign_method=sign_method, method=method, secret_key=secret_key)
    req = RequestInternal(endpoint, method, "/", header={})
    client._build_req_inter("BankCardOCR", params, req)
    headers = {k: str(v) for k, v in req.header.items()}
    headers.setdefault("Host", endpoint)
    data = req.data.encode() if isinstance(req.data, str) else req.data
    return headers, (data if method == "GET" else b""), (b"" if method == "GET" else data)


def incoming(headers, query=b"", body=b"", method="POST", path="/") -> IncomingRequest:
    return IncomingRequest(
        method=method, path=path, raw_path=path.encode(), query_string=query,
        headers=[(k.lower(), v) for k, v in headers.items()], body=body,
    )


def card_engine(**kwargs) -> FakeEngine:
    """FakeEngine reading a card whose number passes Luhn (the fake's default is the doc's, which does not)."""
    return FakeEngine(make_reading(NUMBER), **kwargs)


@pytest.fixture
def serve(live_gateway):
    """serve(engine, ...) -> "127.0.0.1:PORT" of a gateway running only the Tencent dialect."""

    def start(engine=None, *, credentials=CREDENTIALS, allow_unsigned=False, clock=None, config=None,
              router=None, resolver=public_resolver):
        dialect = tencent.create({"credentials": credentials} if credentials else {}, allow_unsigned)
        http_client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) if router else None
        app = create_app(config or {}, engine if engine is not None else card_engine(), clock=clock or Clock(),
                         allow_unsigned=allow_unsigned, dialects=[dialect], http_client=http_client,
                         resolver=resolver)
        return live_gateway(app).removeprefix("http://")

    return start


# --- the verifiers, without a server -------------------------------------------------

CAPTURED_BODY = b'{"ImageBase64": "/9j/4AAQSkZJRgABAQAAAQABAABiYW5rY2FyZC10ZXN0LWltYWdl/9k=", "RetBorderCutImage": false}'


def test_canonical_request_matches_the_captured_sdk_call():
    """captures/tencent_tc3_post.http + .canonical.txt: same CanonicalRequest, same hash in StringToSign."""
    req = incoming({"Content-Type": "application/json", "Host": "127.0.0.1:38627"}, body=CAPTURED_BODY)
    canonical = tencent.tc3_canonical_requests(req, ["content-type", "host"])[0]
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json\nhost:127.0.0.1:38627\n\ncontent-type;host\n"
        "ce340682b5ed02ff49b089cadcfd56ac1cca2a062fee7284fe07c4daa2836187"
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == "c78de257710b7cdd5939365047296042eb2e47f71e8c8821f3889db93f380e76"


@pytest.mark.parametrize("sign_method,method", SIGN_METHODS)
def test_verifiers_accept_what_the_sdk_signs(sign_method, method):
    headers, query, body = signed_request("127.0.0.1:8080", {"ImageBase64": CARD_B64, "RetCardNoImage": True},
                                          sign_method=sign_method, method=method)
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    req = incoming(headers, query, body, method)
    assert dialect.authenticate(req, time.time()) == SECRET_ID
    call = dialect.parse(req)
    assert call.image.data == fake_card_image(NUMBER) and call.options.want_card_no_image


@pytest.mark.parametrize("sign_method,method", SIGN_METHODS)
def test_verifiers_refuse_a_changed_byte(sign_method, method):
    headers, query, body = signed_request("127.0.0.1:8080", {"ImageBase64": CARD_B64}, sign_method=sign_method,
                                          method=method)
    if method == "GET":
        query = query.replace(b"ImageBase64=%2F", b"ImageBase64=%2B")
    else:
        body = body.replace(b"/9j/", b"+9j/") if b"/9j/" in body else body.replace(b"%2F9j", b"%2B9j")
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    with pytest.raises(VendorError) as info:
        dialect.authenticate(incoming(headers, query, body, method), time.time())
    assert info.value.code == "AuthFailure.SignatureFailure"


def _tc3_sign(headers, body, secret_key=SECRET_KEY, lower_values=False, date=None, service="ocr", host=None):
    """`service` and `host` (the value signed, default the Host sent) let a test sign as the Node SDK does."""
    ts = headers["X-TC-Timestamp"]
    date = date or time.strftime("%Y-%m-%d", time.gmtime(int(ts)))
    values = {"content-type": headers["Content-Type"], "host": host or headers["Host"], "x-tc-action": headers["X-TC-Action"]}
    if lower_values:
        values = {k: v.lower() for k, v in values.items()}
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in values.items())
    canonical = "\n".join(["POST", "/", "", canonical_headers, ";".join(values), hashlib.sha256(body).hexdigest()])
    sts = "\n".join(["TC3-HMAC-SHA256", ts, f"{date}/{service}/tc3_request", hashlib.sha256(canonical.encode()).hexdigest()])
    sig = tencent.tc3_signature(secret_key, date, service, sts)
    headers["Authorization"] = (f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/{service}/tc3_request, "
                                f"SignedHeaders={';'.join(values)}, Signature={sig}")
    return headers


def _tc3_headers(**extra):
    return {"Content-Type": "application/json", "Host": "Gateway.Example:8443", "X-TC-Action": "BankCardOCR",
            "X-TC-Version": tencent.VERSION, "X-TC-Timestamp": str(int(time.time())), **extra}


@pytest.mark.parametrize("lower_values", [False, True])
def test_tc3_extra_signed_headers_and_lower_cased_values(lower_values):
    """Tencent's doc signs extra headers with lower-cased values; the SDK signs values as sent. Both pass."""
    body = b'{"ImageBase64": "%s"}' % CARD_B64.encode()
    headers = _tc3_sign(_tc3_headers(), body, lower_values=lower_values)
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    assert dialect.authenticate(incoming(headers, body=body), time.time()) == SECRET_ID


@pytest.mark.parametrize(
    "edit,code",
    [
        (lambda h: h.update(Authorization=h["Authorization"].replace("tc3_request", "tc2_request")), "AuthFailure.InvalidAuthorization"),
        (lambda h: h.update(Authorization=h["Authorization"].replace("/ocr/", "/cvm/")), "AuthFailure.InvalidAuthorization"),
        (lambda h: h.update(Authorization=h["Authorization"].replace("content-type;", "")), "AuthFailure.InvalidAuthorization"),
        (lambda h: h.pop("X-TC-Timestamp"), "AuthFailure.InvalidAuthorization"),
        (lambda h: h.update(Authorization="TC3-HMAC-SHA256 garbage"), "AuthFailure.InvalidAuthorization"),
        (lambda h: h.update(Authorization=h["Authorization"].replace(SECRET_ID, "AKIDunknown")), "AuthFailure.SecretIdNotFound"),
        (lambda h: h.update({"X-TC-Token": "temporary-token"}), "AuthFailure.TokenFailure"),
        (lambda h: h.update({"X-TC-Timestamp": str(int(h["X-TC-Timestamp"]) - 301)}), "AuthFailure.SignatureExpire"),
    ],
)
def test_tc3_header_faults(edit, code):
    body = b'{"ImageBase64": "%s"}' % CARD_B64.encode()
    headers = _tc3_sign(_tc3_headers(), body)
    edit(headers)
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    with pytest.raises(VendorError) as info:
        dialect.authenticate(incoming(headers, body=body), time.time())
    assert info.value.code == code


def test_tc3_credential_date_must_be_the_utc_date_of_the_timestamp():
    body = b"{}"
    headers = _tc3_sign(_tc3_headers(), body, date="2001-01-01")
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    with pytest.raises(VendorError) as info:
        dialect.authenticate(incoming(headers, body=body), time.time())
    assert info.value.code == "AuthFailure.SignatureFailure"


NODE_CAPTURED_BODY = b'{"ImageBase64":"/9j/4AAQSkZJRgABAQAAAQABAABiYW5rY2FyZC10ZXN0LWltYWdl/9k=","RetBorderCutImage":false}'


def test_canonical_request_matches_the_captured_node_sdk_call():
    """captures/node_tencent_tc3_post.http + .canonical.txt: tencentcloud-sdk-nodejs signs `host` without the port."""
    req = incoming({"Content-Type": "application/json", "Host": "127.0.0.1:39563"}, body=NODE_CAPTURED_BODY)
    node_canonical = (
        "POST\n/\n\ncontent-type:application/json\nhost:127.0.0.1\n\ncontent-type;host\n"
        "45c0f057bb4e2efd397f9e873d0942ae5c575856e43166537cdf7deccbf76549"
    )
    assert node_canonical in tencent.tc3_canonical_requests(req, ["content-type", "host"])
    assert hashlib.sha256(node_canonical.encode()).hexdigest() == "7e9ab7d6deed8c5f787f186bcafdded5ffd060eac81c4d9407a77b33bb2de8e2"


@pytest.mark.parametrize("sent_host,service", [("127.0.0.1:8080", "127"), ("localhost:8080", "localhost:8080"),
                                               ("gateway.example:8443", "Gateway")])
def test_tc3_as_the_node_sdk_signs(sent_host, service):
    """Scope service = the endpoint text up to its first dot (case as the caller wrote it), host signed without the port."""
    body = b'{"ImageBase64":"%s"}' % CARD_B64.encode()
    headers = _tc3_sign(_tc3_headers(Host=sent_host), body, service=service, host=sent_host.rsplit(":", 1)[0])
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    assert dialect.authenticate(incoming(headers, body=body), time.time()) == SECRET_ID
    with pytest.raises(VendorError) as info:  # the secret still decides
        dialect.authenticate(incoming(_tc3_sign(headers, body, secret_key="not-the-secret", service=service,
                                                host=sent_host.rsplit(":", 1)[0]), body=body), time.time())
    assert info.value.code == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("sent_host,service", [("127.0.0.1:8080", "128"), ("127.0.0.1:8080", "127.0"),
                                               ("gateway.example:8443", "example"), ("ocr.example:8443", "cvm")])
def test_tc3_scope_service_other_than_ocr_or_the_host_label_is_refused(sent_host, service):
    body = b"{}"
    headers = _tc3_sign(_tc3_headers(Host=sent_host), body, service=service)
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    with pytest.raises(VendorError) as info:
        dialect.authenticate(incoming(headers, body=body), time.time())
    assert info.value.code == "AuthFailure.InvalidAuthorization"


def test_tc3_host_signed_without_port_still_binds_the_host_name():
    body = b"{}"
    headers = _tc3_sign(_tc3_headers(Host="127.0.0.1:8080"), body, service="127", host="127.0.0.2")
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    with pytest.raises(VendorError) as info:
        dialect.authenticate(incoming(headers, body=body), time.time())
    assert info.value.code == "AuthFailure.SignatureFailure"


def test_legacy_string_to_sign_reads_underscores_as_dots_and_sorts():
    params = {"B_x": "2", "A": "1", "Signature": "ignored"}
    assert tencent.legacy_string_to_sign("POST", "h:1", "/", params) == "POSTh:1/?A=1&B.x=2"


def test_legacy_missing_common_parameters():
    dialect = tencent.create({"credentials": CREDENTIALS}, False)
    req = incoming({"Content-Type": "application/x-www-form-urlencoded", "Host": "h"},
                   body=b"Action=BankCardOCR&SecretId=" + SECRET_ID.encode() + b"&Timestamp=1&Nonce=2")
    with pytest.raises(VendorError) as info:
        dialect.authenticate(req, time.time())
    assert (info.value.code, info.value.detail) == ("MissingParameter", "Signature")


# --- rendering and the table -----------------------------------------------------------

DOC_CODES = [
    "FailedOperation.DownLoadError", "FailedOperation.IllegalBankCardError", "FailedOperation.ImageDecodeFailed",
    "FailedOperation.NoBankCardError", "FailedOperation.OcrFailed", "FailedOperation.UnKnowError",
    "FailedOperation.UnOpenError", "InvalidParameter.EngineImageDecodeFailed",
    "InvalidParameterValue.InvalidParameterValueLimit", "LimitExceeded.TooLargeFileError",
    "ResourcesSoldOut.ChargeStatusException",
]


def test_error_table_is_whole():
    assert set(DOC_CODES) <= set(tencent.ERRORS)
    assert tencent.ERRORS.unanswered() == []
    assert all(entry.message and entry.message_en for entry in tencent.ERRORS.values())
    for kind in [getattr(gw, n) for n in dir(gw) if isinstance(getattr(gw, n), type) and issubclass(getattr(gw, n), gw.GatewayError)]:
        if kind is not gw.GatewayError:
            assert tencent.error_code_for(kind("x")) != "InternalError", kind
    assert tencent.error_code_for(VendorError("internal")) == "InternalError"
    assert tencent.error_code_for(KeyError("x")) == "InternalError"


@pytest.mark.parametrize("text,expected", [("08/22", "08/2022"), ("12/2031", "12/2031"), ("8/22", ""), ("", "")])
def test_valid_date_is_mm_yyyy(text, expected):
    assert tencent.valid_date(make_reading(expiry=text or None)) == expected


def test_bank_info_follows_the_language():
    reading = make_reading()
    assert tencent.bank_info(reading, tencent.LANG_ZH) == "招商银行(03080000)"
    assert tencent.bank_info(reading, tencent.LANG_EN) == "China Merchants Bank (03080000)"
    no_code = make_reading(bank=BankInfo(None, "某银行", None, None, None, None))
    assert tencent.bank_info(no_code, tencent.LANG_EN) == "某银行"
    assert tencent.bank_info(make_reading(bank=None), tencent.LANG_ZH) == ""


# --- end to end with the SDK ---------------------------------------------------------------


def test_tc3_post_reads_a_card(serve):
    engine = card_engine()
    resp = read_card(sdk_client(serve(engine)), ImageBase64=CARD_B64)
    assert isinstance(resp, models.BankCardOCRResponse)
    assert resp.CardNo == NUMBER
    assert resp.BankInfo == "招商银行(03080000)"
    assert resp.ValidDate == "08/2022"
    assert (resp.CardType, resp.CardName) == ("贷记卡", "招商银行信用卡")
    assert resp.BorderCutImage is None and resp.CardNoImage is None and resp.QualityValue is None
    assert resp.WarningCode == []
    assert UUID4.match(resp.RequestId)
    assert engine.images == [fake_card_image(NUMBER)]
    options = engine.last_options
    assert not (options.want_border_cut_image or options.want_card_no_image or options.check_copy
                or options.check_reshoot or options.check_border or options.want_quality)
    assert options.min_side == 20


@pytest.mark.parametrize("sign_method,method", SIGN_METHODS)
def test_every_signature_method_with_every_flag(serve, sign_method, method):
    engine = FakeEngine(make_reading(NUMBER, warnings=["reshoot", "photocopy", "invalid_date", "border_incomplete", "reflection"]))
    client = sdk_client(serve(engine), sign_method=sign_method, method=method)
    flags = ["RetBorderCutImage", "RetCardNoImage", "EnableCopyCheck", "EnableReshootCheck",
             "EnableBorderCheck", "EnableQualityValue"]
    resp = read_card(client, ImageBase64=CARD_B64, **{flag: True for flag in flags})
    assert resp.CardNo == NUMBER
    assert base64.b64decode(resp.BorderCutImage) == TINY_JPEG
    assert base64.b64decode(resp.CardNoImage) == TINY_JPEG
    assert resp.QualityValue == 87
    assert resp.WarningCode == [-9114, -9113, -9110, -9111, -9112]
    options = engine.last_options
    assert all([options.want_border_cut_image, options.want_card_no_image, options.check_copy,
                options.check_reshoot, options.check_border, options.check_reflection, options.want_quality])


def test_false_flags_in_every_style(serve):
    engine = card_engine()
    endpoint = serve(engine)
    for sign_method, method in SIGN_METHODS:
        read_card(sdk_client(endpoint, sign_method=sign_method, method=method), ImageBase64=CARD_B64,
                  RetBorderCutImage=False, EnableQualityValue=False)
        assert not engine.last_options.want_border_cut_image and not engine.last_options.want_quality


def test_unsigned_payload_variant(serve):
    resp = read_card(sdk_client(serve(), unsigned_payload=True), ImageBase64=CARD_B64)
    assert resp.CardNo == NUMBER


def test_common_client_in_english(serve):
    endpoint = serve()
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint), language="en-US")
    client = CommonClient("ocr", tencent.VERSION, credential.Credential(SECRET_ID, SECRET_KEY), "ap-singapore", profile)
    result = client.call_json("BankCardOCR", {"ImageBase64": CARD_B64})
    assert result["Response"]["BankInfo"] == "China Merchants Bank (03080000)"
    assert result["Response"]["ValidDate"] == "08/2022"
    with pytest.raises(TencentCloudSDKException) as info:
        client.call_json("BankCardOCR", {})
    assert info.value.code == "InvalidParameter"
    assert info.value.message == tencent.ERRORS["InvalidParameter"].message_en


def test_legacy_language_parameter_localizes_errors(serve):
    client = sdk_client(serve(), sign_method="HmacSHA256", language="en-US")
    assert sdk_error(client).message == tencent.ERRORS["InvalidParameter"].message_en
    client = sdk_client(serve(), sign_method="HmacSHA256")
    assert sdk_error(client).message == tencent.ERRORS["InvalidParameter"].message


def test_content_type_is_exactly_application_json(serve):
    endpoint = serve()
    for params in ({"ImageBase64": CARD_B64}, {}):
        headers, _, body = signed_request(endpoint, params)
        r = httpx.post(f"http://{endpoint}/", headers=headers, content=body)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert set(r.json()["Response"]) >= {"RequestId"}
    r = httpx.post(f"http://{endpoint}/", json={})  # unsigned: an AuthFailure, same shape
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    error = r.json()["Response"]
    assert error["Error"]["Code"] == "AuthFailure.InvalidAuthorization" and UUID4.match(error["RequestId"])


@pytest.mark.parametrize("sign_method,method", SIGN_METHODS)
def test_prefixed_route(serve, sign_method, method):
    """POST/GET /tencent/ serves the same API; the SDK signed its own path "/"."""
    endpoint = serve()
    headers, query, body = signed_request(endpoint, {"ImageBase64": CARD_B64}, sign_method=sign_method, method=method)
    url = f"http://{endpoint}/tencent/" + ("?" + query.decode() if query else "")
    r = httpx.request(method, url, headers=headers, content=body or None)
    assert r.headers["content-type"] == "application/json"
    assert r.json()["Response"]["CardNo"] == NUMBER


def test_unknown_path_under_the_prefix_is_invalid_action(serve):
    r = httpx.post(f"http://{serve()}/tencent/nope", json={})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["Response"]["Error"]["Code"] == "InvalidAction"


def test_open_gateway_takes_unsigned_and_any_key(serve):
    endpoint = serve(credentials={}, allow_unsigned=True)
    r = httpx.post(f"http://{endpoint}/", json={"ImageBase64": CARD_B64},
                   headers={"X-TC-Action": "BankCardOCR", "X-TC-Version": tencent.VERSION})
    assert r.json()["Response"]["CardNo"] == NUMBER
    assert read_card(sdk_client(endpoint, secret_id="AKIDanyone", secret_key="whatever"), ImageBase64=CARD_B64).CardNo


def test_no_credentials_without_allow_unsigned_refuses(serve):
    endpoint = serve(credentials={}, allow_unsigned=False)
    assert sdk_error(sdk_client(endpoint), ImageBase64=CARD_B64).code == "AuthFailure.SecretIdNotFound"


def test_image_url_wins_over_base64(serve):
    router = respx.Router()
    router.get("https://img.example.com/card.jpg").respond(200, content=fake_card_image("4111111111111111"))
    engine = card_engine(number_from_image=True)
    resp = read_card(sdk_client(serve(engine, router=router)), ImageUrl="https://img.example.com/card.jpg",
                     ImageBase64=CARD_B64)
    assert resp.CardNo == "4111111111111111"
    assert engine.images == [fake_card_image("4111111111111111")]


def test_image_url_wins_even_over_broken_base64(serve):
    router = respx.Router()
    router.get("https://img.example.com/card.jpg").respond(200, content=fake_card_image())
    resp = read_card(sdk_client(serve(router=router)), ImageUrl="https://img.example.com/card.jpg", ImageBase64="!!")
    assert resp.CardNo == NUMBER


# --- the negative suite, end to end --------------------------------------------------------


@pytest.mark.parametrize("sign_method,method", SIGN_METHODS)
def test_tampered_request_is_a_signature_failure(serve, sign_method, method):
    client = sdk_client(serve(), sign_method=sign_method, method=method)

    def tamper(req):
        req.data = req.data.replace("/9j/", "+9j/", 1) if "/9j/" in req.data else req.data.replace("%2F9j", "%2B9j", 1)

    edit_before_send(client, tamper)
    assert sdk_error(client, ImageBase64=CARD_B64).code == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("sign_method,method", SIGN_METHODS)
def test_rewritten_host_is_a_signature_failure(serve, sign_method, method):
    client = sdk_client(serve(), sign_method=sign_method, method=method)
    edit_before_send(client, lambda req: req.header.__setitem__("Host", "ocr.tencentcloudapi.com"))
    assert sdk_error(client, ImageBase64=CARD_B64).code == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("offset", [+301, -301])
@pytest.mark.parametrize("sign_method,method", [("TC3-HMAC-SHA256", "POST"), ("HmacSHA1", "POST"), ("HmacSHA256", "GET")])
def test_expired_timestamp(serve, sign_method, method, offset):
    client = sdk_client(serve(clock=Clock(offset)), sign_method=sign_method, method=method)
    assert sdk_error(client, ImageBase64=CARD_B64).code == "AuthFailure.SignatureExpire"


def test_timestamp_inside_the_window(serve):
    assert read_card(sdk_client(serve(clock=Clock(290))), ImageBase64=CARD_B64).CardNo


@pytest.mark.parametrize("sign_method", ["TC3-HMAC-SHA256", "HmacSHA1"])
def test_unknown_key_and_wrong_secret(serve, sign_method):
    endpoint = serve()
    unknown = sdk_client(endpoint, sign_method=sign_method, secret_id="AKIDnotConfigured")
    assert sdk_error(unknown, ImageBase64=CARD_B64).code == "AuthFailure.SecretIdNotFound"
    wrong = sdk_client(endpoint, sign_method=sign_method, secret_key="not-the-secret")
    assert sdk_error(wrong, ImageBase64=CARD_B64).code == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("sign_method", ["TC3-HMAC-SHA256", "HmacSHA256"])
def test_temporary_credentials_are_refused(serve, sign_method):
    client = sdk_client(serve(), sign_method=sign_method, token="temporary-session-token")
    assert sdk_error(client, ImageBase64=CARD_B64).code == "AuthFailure.TokenFailure"


def test_unsigned_request_needs_a_signature_when_keys_are_configured(serve):
    endpoint = serve()
    for auth in (None, "SKIP", "TC3-HMAC-SHA256 Credential=x"):
        headers = {"X-TC-Action": "BankCardOCR", "X-TC-Version": tencent.VERSION}
        if auth:
            headers["Authorization"] = auth
        r = httpx.post(f"http://{endpoint}/", json={"ImageBase64": CARD_B64}, headers=headers)
        assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"


@pytest.mark.parametrize("sign_method,method", SIGN_METHODS)
def test_missing_image(serve, sign_method, method):
    client = sdk_client(serve(), sign_method=sign_method, method=method)
    assert sdk_error(client, RetBorderCutImage=True).code == "InvalidParameter"
    assert sdk_error(client, ImageBase64="", ImageUrl="").code == "InvalidParameter"


@pytest.mark.parametrize("bad", ["not base64!", "/9j/4AAQSkZJRg", "/9j_4AAQSkZJRg==", "/9j/\n4AAQSkZJRgAB", "data:image/jpeg;base64,/9j/4AAQ"])
def test_bad_base64(serve, bad):
    engine = card_engine()
    assert sdk_error(sdk_client(serve(engine)), ImageBase64=bad).code == "InvalidParameter.EngineImageDecodeFailed"
    assert engine.calls == []


def test_truncated_jpeg(serve):
    image = base64.b64encode(truncated_jpeg()).decode()
    assert sdk_error(sdk_client(serve(CheckingEngine(make_reading(NUMBER)))), ImageBase64=image).code == "FailedOperation.ImageDecodeFailed"


def test_gif_is_refused_before_the_engine(serve):
    engine = card_engine()
    err = sdk_error(sdk_client(serve(engine)), ImageBase64=base64.b64encode(GIF_BYTES).decode())
    assert err.code == "FailedOperation.ImageDecodeFailed"
    assert engine.calls == []


def test_a_real_photo_passes_the_checking_engine(serve):
    image = base64.b64encode(photo(500, 320)).decode()
    assert read_card(sdk_client(serve(CheckingEngine(make_reading(NUMBER)))), ImageBase64=image).CardNo == NUMBER


def test_too_small_image(serve):
    image = base64.b64encode(photo(19, 40, ".png")).decode()
    err = sdk_error(sdk_client(serve(CheckingEngine(make_reading(NUMBER)))), ImageBase64=image)
    assert err.code == "InvalidParameterValue.InvalidParameterValueLimit"


def test_too_large_side(serve):
    engine = card_engine()
    err = sdk_error(sdk_client(serve(engine)), ImageBase64=base64.b64encode(png_header(10001, 100)).decode())
    assert err.code == "LimitExceeded.TooLargeFileError"
    assert engine.calls == []


def test_oversize_image_base64(serve):
    """Over 7 MB of base64 (but under the 10 MB body limit)."""
    engine = card_engine()
    big = base64.b64encode(fake_card_image(padding=tencent.BASE64_MAX * 3 // 4 + 3)).decode()
    assert len(big) > tencent.BASE64_MAX
    assert sdk_error(sdk_client(serve(engine)), ImageBase64=big).code == "LimitExceeded.TooLargeFileError"
    assert engine.calls == []


def test_oversize_body(serve):
    big = "A" * (tencent.LIMITS.max_body_bytes + 10)
    assert sdk_error(sdk_client(serve()), ImageBase64=big).code == "RequestSizeLimitExceeded"


def test_url_download_failures(serve):
    router = respx.Router()
    router.get("https://img.example.com/missing.jpg").respond(404)
    router.get("https://img.example.com/slow.jpg").mock(side_effect=httpx.ReadTimeout("slow"))
    router.get("https://img.example.com/huge.jpg").respond(200, content=b"\xff\xd8\xff" + b"\0" * tencent.LIMITS.max_image_bytes)
    router.get("https://img.example.com/anim.gif").respond(200, content=GIF_BYTES)
    client = sdk_client(serve(router=router))
    assert sdk_error(client, ImageUrl="https://img.example.com/missing.jpg").code == "FailedOperation.DownLoadError"
    assert sdk_error(client, ImageUrl="https://img.example.com/slow.jpg").code == "FailedOperation.DownLoadError"
    assert sdk_error(client, ImageUrl="ftp://img.example.com/card.jpg").code == "FailedOperation.DownLoadError"
    assert sdk_error(client, ImageUrl="https://img.example.com/huge.jpg").code == "LimitExceeded.TooLargeFileError"
    assert sdk_error(client, ImageUrl="https://img.example.com/anim.gif").code == "FailedOperation.ImageDecodeFailed"


def test_private_image_url_is_refused(serve):
    async def private(host, port):
        return ["10.0.0.7"]

    router = respx.Router()
    route = router.get("https://intranet.example.com/card.jpg").respond(200, content=fake_card_image())
    client = sdk_client(serve(router=router, resolver=private))
    assert sdk_error(client, ImageUrl="https://intranet.example.com/card.jpg").code == "FailedOperation.DownLoadError"
    assert sdk_error(client, ImageUrl="http://169.254.169.254/latest").code == "FailedOperation.DownLoadError"
    assert not route.called


@pytest.mark.parametrize(
    "error,code",
    [
        (engine_errors.NoCardFoundError(), "FailedOperation.NoBankCardError"),
        (engine_errors.NumberUnreadableError(), "FailedOperation.OcrFailed"),
        (engine_errors.ImageBlurredError(), "FailedOperation.OcrFailed"),
        (engine_errors.ImageDecodeError(), "FailedOperation.ImageDecodeFailed"),
        (engine_errors.ImageTooSmallError(), "InvalidParameterValue.InvalidParameterValueLimit"),
        (engine_errors.ImageTooLargeError(), "LimitExceeded.TooLargeFileError"),
        (engine_errors.EngineError("odd"), "FailedOperation.UnKnowError"),
        (RuntimeError("bug"), "InternalError"),
    ],
)
def test_engine_errors(serve, error, code):
    assert sdk_error(sdk_client(serve(card_engine(error=error))), ImageBase64=CARD_B64).code == code


def test_invalid_card_number_is_illegal_bank_card(serve):
    engine = FakeEngine(make_reading("6225760088888888"))  # the doc's example: Luhn fails
    assert sdk_error(sdk_client(serve(engine)), ImageBase64=CARD_B64).code == "FailedOperation.IllegalBankCardError"


def test_busy_engine_is_request_limit_exceeded(serve):
    endpoint = serve(card_engine(delay_s=0.6), config={"engine": {"threads": 1, "queue_size": 0}})
    results: list[object] = []

    def call():
        try:
            results.append(read_card(sdk_client(endpoint), ImageBase64=CARD_B64).CardNo)
        except TencentCloudSDKException as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert NUMBER in results and "RequestLimitExceeded" in results


def test_unknown_action_and_version(serve):
    endpoint = serve()
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint))
    cred = credential.Credential(SECRET_ID, SECRET_KEY)
    with pytest.raises(TencentCloudSDKException) as info:
        CommonClient("ocr", tencent.VERSION, cred, "", profile).call_json("GeneralBasicOCR", {"ImageBase64": CARD_B64})
    assert info.value.code == "InvalidAction"
    with pytest.raises(TencentCloudSDKException) as info:
        CommonClient("ocr", "2017-03-12", cred, "", profile).call_json("BankCardOCR", {"ImageBase64": CARD_B64})
    assert info.value.code == "NoSuchVersion"


@pytest.mark.parametrize("header", ["X-TC-Action", "X-TC-Version"])
def test_missing_action_or_version(serve, header):
    endpoint = serve()
    headers, _, body = signed_request(endpoint, {"ImageBase64": CARD_B64})
    del headers[header]  # not signed: the signature still holds
    r = httpx.post(f"http://{endpoint}/", headers=headers, content=body)
    assert r.json()["Response"]["Error"]["Code"] == "MissingParameter"


@pytest.mark.parametrize(
    "params,code",
    [
        ({"ImageBase64": CARD_B64, "RetBorderCutImage": "perhaps"}, "InvalidParameter"),
        ({"ImageBase64": 12345}, "InvalidParameter"),
        ({"ImageUrl": ["https://img.example.com/a.jpg"]}, "InvalidParameter"),
    ],
)
def test_wrong_parameter_types(serve, params, code):
    endpoint = serve()
    headers, _, body = signed_request(endpoint, params)
    r = httpx.post(f"http://{endpoint}/", headers=headers, content=body)
    assert r.json()["Response"]["Error"]["Code"] == code


def test_body_that_is_not_json(serve):
    endpoint = serve(credentials={}, allow_unsigned=True)
    r = httpx.post(f"http://{endpoint}/", content=b"{nope", headers={"Content-Type": "application/json",
                   "X-TC-Action": "BankCardOCR", "X-TC-Version": tencent.VERSION})
    assert r.json()["Response"]["Error"]["Code"] == "InvalidParameter"


def test_request_ids_are_fresh_per_request(serve):
    client = sdk_client(serve())
    ids = {read_card(client, ImageBase64=CARD_B64).RequestId for _ in range(3)}
    assert len(ids) == 3 and all(UUID4.match(i) for i in ids)


def test_real_engine_reads_real_cards(serve):
    """The real engine behind the SDK: photos the engine reads directly come out right through the gateway."""
    engine = real_engine()
    cards = real_cards(engine)
    client = sdk_client(serve(engine))
    right = 0
    for image, number in cards:
        try:
            resp = read_card(client, ImageBase64=base64.b64encode(image).decode(), EnableQualityValue=True)
        except TencentCloudSDKException as exc:
            assert exc.code in ("FailedOperation.NoBankCardError", "FailedOperation.OcrFailed",
                                "FailedOperation.IllegalBankCardError"), exc
            continue
        assert resp.CardNo.isdigit() and 0 <= resp.QualityValue <= 100
        right += resp.CardNo == number
    assert right == len(cards)
