"""Alibaba Cloud OCR 2021-07-07 RecognizeBankCard dialect.

Unit tests of ACS3-HMAC-SHA256 (sign/verify from one canonicalisation, requests the
SDK's own signer made); then end to end:
alibabacloud-ocr-api20210707's Client against a live gateway on 127.0.0.1, body and
URL variants, and the negative suite, each raised by the SDK as the ClientException
(or ServerException) with Alibaba's own code and HTTP status. The gateway serves
Tencent's API at `POST /` at the same time: both must keep working.
"""
from __future__ import annotations

import io
import json
import logging
import threading
import uuid

import httpx
import pytest
import respx

from adapters import alibaba, alibaba_auth, tencent
from engine import errors as engine_errors
from gateway.app import create_app
from tests.fakes import GIF_BYTES, FakeEngine, fake_card_image, make_reading, png_header
from tests.test_huawei_support import CheckingEngine, photo
from tests.test_tencent_support import Clock, public_resolver

pytest.importorskip("alibabacloud_ocr_api20210707")
from alibabacloud_ocr_api20210707 import models as ocr_models  # noqa: E402
from alibabacloud_ocr_api20210707.client import Client as OcrClient  # noqa: E402
from alibabacloud_tea_openapi import exceptions as ali_exceptions  # noqa: E402
from alibabacloud_tea_openapi import models as open_api_models  # noqa: E402
from alibabacloud_tea_openapi.utils import Utils as AliUtils  # noqa: E402
from alibabacloud_tea_util import models as util_models  # noqa: E402
from darabonba.core import DaraCore  # noqa: E402

AK = "LTAIcardgateTEST0000000"
SECRET = "cardgate-alibaba-test-secret"
CREDENTIALS = {AK: SECRET}
NUMBER = "6225760088888883"  # Luhn-valid
CARD = fake_card_image(NUMBER)
TENCENT_ID, TENCENT_KEY = "AKIDcardgateTESTexampleEXAMPLE0001", "cardgate-tencent-test-secret"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def card_engine(**kwargs) -> FakeEngine:
    return FakeEngine(make_reading(NUMBER), **kwargs)


@pytest.fixture
def serve(live_gateway):
    """serve(engine, ...) -> "127.0.0.1:PORT" of a gateway running the Alibaba and Tencent dialects."""

    def start(engine=None, *, credentials=CREDENTIALS, allow_unsigned=False, clock=None, config=None, router=None):
        dialects = [tencent.create({"credentials": {TENCENT_ID: TENCENT_KEY}}, allow_unsigned),
                    alibaba.create({"credentials": credentials} if credentials else {}, allow_unsigned)]
        http_client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) if router else None
        app = create_app(config or {}, engine if engine is not None else card_engine(), clock=clock or Clock(),
                         allow_unsigned=allow_unsigned, dialects=dialects, http_client=http_client,
                         resolver=public_resolver)
        return live_gateway(app).removeprefix("http://")

    return start


def sdk(endpoint: str, ak: str = AK, secret: str = SECRET) -> OcrClient:
    """README §5.2: host and port only, and protocol "http"."""
    return OcrClient(open_api_models.Config(access_key_id=ak, access_key_secret=secret, endpoint=endpoint,
                                            protocol="http", read_timeout=15000, connect_timeout=5000))


def recognize(client: OcrClient, *, body: bytes | None = None, url: str | None = None):
    request = ocr_models.RecognizeBankCardRequest(body=io.BytesIO(body) if body is not None else None, url=url)
    return client.recognize_bank_card_with_options(request, util_models.RuntimeOptions())


def card_data(response) -> dict:
    assert isinstance(response.body.data, str)  # Data is a JSON string, not an object
    return json.loads(response.body.data)


def sdk_error(client: OcrClient, **kwargs) -> ali_exceptions.ClientException:
    with pytest.raises((ali_exceptions.ClientException, ali_exceptions.ServerException)) as info:
        recognize(client, **kwargs)
    err = info.value
    assert err.request_id and err.request_id != "None"
    return err


@pytest.fixture
def edit_request(monkeypatch):
    """edit_request(fn): fn(DaraRequest) changes each signed request just before it is sent."""

    def install(edit):
        send = DaraCore.do_action

        def edited(request, runtime=None):
            edit(request)
            return send(request, runtime)

        monkeypatch.setattr(DaraCore, "do_action", staticmethod(edited))

    return install


# --- ACS3, without a server ------------------------------------------------------------------------


def signed(body=b"", query="", headers=None, secret=SECRET, now=None):
    now = Clock()() if now is None else now
    base = {"host": "127.0.0.1:9000", "x-acs-action": "RecognizeBankCard", "x-acs-version": "2021-07-07",
            "x-acs-date": alibaba_auth.acs_date(now), "x-acs-signature-nonce": uuid.uuid4().hex,
            "content-type": "application/octet-stream", **(headers or {})}
    return list(alibaba_auth.sign(AK, secret, "POST", "/", query, base, body).items())


def verify(headers, body=b"", query="", now=None):
    now = Clock()() if now is None else now
    return alibaba_auth.verify("POST", ["/"], query, headers, body, CREDENTIALS.get, now)


def test_sign_is_what_verify_checks():
    headers = signed(b"abc", "Url=http%3A%2F%2Fx%2Fa%20b.jpg")
    assert verify(headers, b"abc", "Url=http%3A%2F%2Fx%2Fa%20b.jpg").access_key_id == AK
    for body, query in ((b"abd", "Url=http%3A%2F%2Fx%2Fa%20b.jpg"), (b"abc", "Url=http%3A%2F%2Fx%2Fa.jpg")):
        with pytest.raises(alibaba_auth.AuthFailure, match="SignatureDoesNotMatch"):
            verify(headers, body, query)


def test_the_sdk_signer_agrees():
    """The SDK's own get_authorization over a request, checked by our verifier."""
    from darabonba.request import DaraRequest

    request = DaraRequest()
    request.method, request.pathname, request.query = "POST", "/", {"Url": "http://x/a b~c.jpg"}
    request.headers = {"host": "127.0.0.1:9", "x-acs-date": alibaba_auth.acs_date(Clock()()), "accept": "application/json",
                       "x-acs-signature-nonce": "n1", "x-acs-content-sha256": alibaba_auth.EMPTY_SHA256,
                       "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11"}
    request.headers["authorization"] = AliUtils.get_authorization(request, "ACS3-HMAC-SHA256", alibaba_auth.EMPTY_SHA256,
                                                                  AK, SECRET)
    query = httpx.QueryParams(request.query).__str__()
    assert verify(list(request.headers.items()), b"", query).nonce == "n1"


@pytest.mark.parametrize("edit,code", [
    (lambda h: [(k, v) for k, v in h if k != "authorization"], "MissingSignature"),
    (lambda h: [(k, "ACS3-HMAC-SHA256 Credential=x") if k == "authorization" else (k, v) for k, v in h],
     "IncompleteSignature"),
    (lambda h: [(k, v.replace("ACS3-HMAC-SHA256", "ACS3-HMAC-SM3")) for k, v in h], "InvalidSignatureMethod"),
    (lambda h: [(k, "yesterday") if k == "x-acs-date" else (k, v) for k, v in h], "InvalidTimeStamp.Format"),
    (lambda h: [(k, v.replace(AK, "LTAIunknown")) for k, v in h], "InvalidAccessKeyId.NotFound"),
    (lambda h: h + [("x-acs-extra", "1")], "IncompleteSignature"),  # an x-acs-* header left unsigned
    (lambda h: [(k, "" if k == "x-acs-signature-nonce" else v) for k, v in h], "MissingSignatureNonce"),
])
def test_header_faults(edit, code):
    with pytest.raises(alibaba_auth.AuthFailure) as info:
        verify(edit(signed()))
    assert info.value.code == code


def test_error_table_is_whole():
    assert alibaba.ERRORS.unanswered() == []
    assert all(400 <= entry.status < 600 for entry in alibaba.ERRORS.values())


def test_claims_only_alibaba_requests():
    dialect = alibaba.create({}, True)
    assert dialect.claims("POST", {"x-acs-action": "RecognizeBankCard"}, "")
    assert dialect.claims("POST", {"authorization": "ACS3-HMAC-SHA256 Credential=a"}, "")
    assert dialect.claims("POST", {}, "Action=RecognizeBankCard&Url=x")
    assert not dialect.claims("POST", {"x-tc-action": "BankCardOCR", "authorization": "TC3-HMAC-SHA256 x"}, "")
    assert not dialect.claims("GET", {}, "Action=BankCardOCR&Version=2018-11-19")


# --- the SDK end to end --------------------------------------------------------------------------------


def test_body_variant_reads_a_card(serve):
    response = recognize(sdk(serve()), body=CARD)
    assert response.status_code == 200
    document = card_data(response)
    assert document["data"] == {"bankName": "招商银行", "cardNumber": NUMBER, "validToDate": "2022/08", "cardType": "CC"}
    assert (document["orgWidth"], document["orgHeight"]) == (1280, 800)
    assert (document["width"], document["height"]) == (856, 540)
    assert document["sliceRect"] == {"x0": 150, "y0": 140, "x1": 1130, "y1": 150, "x2": 1122, "y2": 760, "x3": 142, "y3": 752}
    assert {kv["key"] for kv in document["prism_keyValueInfo"]} == {"bankName", "cardNumber", "validToDate", "cardType"}
    assert uuid.UUID(response.body.request_id)


def test_url_variant_and_body_precedence(serve):
    router = respx.Router()
    router.get("https://img.example.com/card.jpg").respond(200, content=fake_card_image("4111111111111111"))
    engine = card_engine(number_from_image=True)
    client = sdk(serve(engine, router=router))
    assert card_data(recognize(client, url="https://img.example.com/card.jpg"))["data"]["cardNumber"] == "4111111111111111"
    both = recognize(client, body=CARD, url="https://img.example.com/card.jpg")
    assert card_data(both)["data"]["cardNumber"] == NUMBER
    assert engine.images == [fake_card_image("4111111111111111"), CARD]


def test_url_failures(serve):
    router = respx.Router()
    router.get("https://img.example.com/missing.jpg").respond(404)
    router.get("https://img.example.com/slow.jpg").mock(side_effect=httpx.ReadTimeout("slow"))
    client = sdk(serve(router=router))
    assert sdk_error(client, url="https://img.example.com/missing.jpg").code == "IllegalImageUrl"
    assert sdk_error(client, url="https://img.example.com/slow.jpg").code == "imageTimeOut"
    assert sdk_error(client, url="ftp://img.example.com/card.jpg").code == "IllegalImageUrl"
    long_url = sdk_error(client, url="https://img.example.com/" + "a" * 2100)
    assert (long_url.code, long_url.status_code) == ("exceededImageUrlLength", 400)


def test_chunked_body_without_content_length(serve):
    endpoint = serve()
    headers = dict(signed(CARD, headers={"host": endpoint}))

    def chunks():
        yield CARD[:10]
        yield CARD[10:]

    answer = httpx.post(f"http://{endpoint}/", headers=headers, content=chunks())
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.json()["Data"])["data"]["cardNumber"] == NUMBER


def test_prefixed_route_and_rpc_action_query(serve):
    endpoint = serve()
    path_headers = dict(signed(CARD, headers={"host": endpoint}))
    assert httpx.post(f"http://{endpoint}/alibaba/", headers=path_headers, content=CARD).status_code == 200
    query = "Action=RecognizeBankCard&Version=2021-07-07"
    headers = dict(signed(CARD, query, headers={"host": endpoint}))
    for name in ("x-acs-action", "x-acs-version"):
        del headers[name]  # resigned below without them: the action rides in the query
    headers = dict(alibaba_auth.sign(AK, SECRET, "POST", "/", query,
                                     {k: v for k, v in headers.items() if k not in ("authorization", "x-acs-content-sha256")},
                                     CARD))
    answer = httpx.post(f"http://{endpoint}/?{query}", headers=headers, content=CARD)
    assert answer.status_code == 200, answer.text


def test_tencent_still_answers_at_the_root(serve):
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.ocr.v20181119 import models, ocr_client

    endpoint = serve()
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint))
    client = ocr_client.OcrClient(credential.Credential(TENCENT_ID, TENCENT_KEY), "ap-guangzhou", profile)
    request = models.BankCardOCRRequest()
    request.ImageBase64 = __import__("base64").b64encode(CARD).decode()
    assert client.BankCardOCR(request).CardNo == NUMBER
    assert card_data(recognize(sdk(endpoint), body=CARD))["data"]["cardNumber"] == NUMBER


# --- the negative suite ----------------------------------------------------------------------------------


def test_wrong_secret_and_unknown_key(serve):
    endpoint = serve()
    wrong = sdk_error(sdk(endpoint, secret="wrong"), body=CARD)
    assert (wrong.code, wrong.status_code) == ("SignatureDoesNotMatch", 400)
    unknown = sdk_error(sdk(endpoint, ak="LTAIunknown"), body=CARD)
    assert (unknown.code, unknown.status_code) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("offset", [-1000, 1000])
def test_expired_timestamp(serve, offset):
    err = sdk_error(sdk(serve(clock=Clock(offset))), body=CARD)
    assert (err.code, err.status_code) == ("InvalidTimeStamp.Expired", 400)


def test_timestamp_inside_the_window(serve):
    assert recognize(sdk(serve(clock=Clock(800))), body=CARD).status_code == 200


def test_reused_nonce(serve, monkeypatch):
    client = sdk(serve())
    monkeypatch.setattr(AliUtils, "get_nonce", staticmethod(lambda: "fixed-nonce-0001"))
    assert recognize(client, body=CARD).status_code == 200
    err = sdk_error(client, body=CARD)
    assert (err.code, err.status_code) == ("SignatureNonceUsed", 400)
    # a second gateway sharing the replay store (another worker) refuses it too; another key may use it
    other = serve(credentials={AK: SECRET, "LTAIsecond": "second-secret"})
    assert sdk_error(sdk(other), body=CARD).code == "SignatureNonceUsed"
    assert recognize(sdk(other, "LTAIsecond", "second-secret"), body=CARD).status_code == 200


def test_a_wrong_signature_burns_no_nonce(serve, monkeypatch):
    endpoint = serve()
    monkeypatch.setattr(AliUtils, "get_nonce", staticmethod(lambda: "fixed-nonce-0002"))
    assert sdk_error(sdk(endpoint, secret="wrong"), body=CARD).code == "SignatureDoesNotMatch"
    assert recognize(sdk(endpoint), body=CARD).status_code == 200


def test_tampered_body(serve, edit_request):
    def tamper(request):
        request.body = request.body[:-3] + b"XYZ"

    edit_request(tamper)
    err = sdk_error(sdk(serve()), body=CARD)
    assert (err.code, err.status_code) == ("SignatureDoesNotMatch", 400)


def test_tampered_query(serve, edit_request):
    endpoint = serve()

    def tamper(request):
        request.query = {"Url": "https://img.example.com/other.jpg"}

    edit_request(tamper)
    assert sdk_error(sdk(endpoint), url="https://img.example.com/card.jpg").code == "SignatureDoesNotMatch"


def test_missing_image(serve):
    err = sdk_error(sdk(serve()))
    assert (err.code, err.status_code) == ("imageUrlOrBodyEmpty", 400)


def test_bad_images(serve):
    client = sdk(serve(CheckingEngine(make_reading(NUMBER))))
    err = sdk_error(client, body=b"not an image at all")
    assert (err.code, err.status_code) == ("unsupportedImageFormat", 415)
    assert sdk_error(client, body=GIF_BYTES).code == "unsupportedImageFormat"
    small = sdk_error(client, body=photo(12, 40))
    assert (small.code, small.status_code) == ("illegalImageSize", 416)
    assert sdk_error(client, body=png_header(9000, 300)).code == "illegalImageSize"
    assert recognize(client, body=photo()).status_code == 200


def test_oversize(serve):
    err = sdk_error(sdk(serve()), body=b"\xff\xd8\xff" + b"\0" * alibaba.LIMITS.max_body_bytes)
    assert (err.code, err.status_code) == ("exceededImageContent", 413)


@pytest.mark.parametrize("error,code,status", [
    (engine_errors.NoCardFoundError(), "unmatchedImageType", 400),
    (engine_errors.NumberUnreadableError(), "illegalImageContent", 400),
    (engine_errors.ImageBlurredError(), "illegalImageContent", 400),
    (engine_errors.EngineError("odd"), "algorithmError", 503),
    (RuntimeError("bug"), "InternalError", 500),
])
def test_engine_errors(serve, error, code, status):
    err = sdk_error(sdk(serve(card_engine(error=error))), body=CARD)
    assert (err.code, err.status_code) == (code, status)


def test_invalid_number_is_not_handed_out(serve):
    err = sdk_error(sdk(serve(FakeEngine(make_reading("6225760088888888")))), body=CARD)
    assert err.code == "illegalImageContent"


def test_busy_and_rate_limited_are_throttling(serve):
    endpoint = serve(card_engine(delay_s=0.6), config={"engine": {"threads": 1, "queue_size": 0}})
    results: list[str] = []

    def call():
        try:
            results.append(card_data(recognize(sdk(endpoint), body=CARD))["data"]["cardNumber"])
        except ali_exceptions.ClientException as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert NUMBER in results and "Throttling" in results

    limited = sdk(serve(config={"rate_limits": {"credentials": {AK: 0.001}, "burst": 1}}))
    assert recognize(limited, body=CARD).status_code == 200
    assert sdk_error(limited, body=CARD).code == "Throttling.User"


def test_unknown_action_and_version(serve):
    endpoint = serve()
    headers = dict(signed(CARD, headers={"host": endpoint, "x-acs-action": "RecognizeIdcard"}))
    answer = httpx.post(f"http://{endpoint}/", headers=headers, content=CARD)
    assert (answer.status_code, answer.json()["Code"]) == (404, "InvalidApi.NotFound")
    headers = dict(signed(CARD, headers={"host": endpoint, "x-acs-version": "2019-12-30"}))
    answer = httpx.post(f"http://{endpoint}/", headers=headers, content=CARD)
    assert (answer.status_code, answer.json()["Code"]) == (400, "InvalidVersion")


def test_error_body_shape_and_metrics(serve):
    endpoint = serve()
    headers = dict(signed(b"", headers={"host": endpoint}))
    answer = httpx.post(f"http://{endpoint}/", headers=headers)
    body = answer.json()
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"} and body["Code"] == "imageUrlOrBodyEmpty"
    text = httpx.get(f"http://{endpoint}/metrics").text
    assert 'dialect="alibaba"' in text and 'code="imageUrlOrBodyEmpty"' in text


def test_open_gateway_takes_unsigned(serve):
    endpoint = serve(credentials={}, allow_unsigned=True)
    answer = httpx.post(f"http://{endpoint}/", headers={"x-acs-action": "RecognizeBankCard",
                                                         "x-acs-version": "2021-07-07"}, content=CARD)
    assert answer.status_code == 200 and json.loads(answer.json()["Data"])["data"]["cardNumber"] == NUMBER


def test_access_log_lines_without_card_data_or_secrets(serve, caplog):
    endpoint = serve()
    with caplog.at_level(logging.INFO, logger="cardgate.access"):
        recognize(sdk(endpoint), body=CARD)
        sdk_error(sdk(endpoint, secret="wrong"), body=CARD)
    lines = [r.fields for r in caplog.records if r.name == "cardgate.access"]
    ok, refused = lines
    assert (ok["dialect"], ok["route"], ok["status"], ok["credential"]) == ("alibaba", "/", 200, AK)
    assert (refused["dialect"], refused["status"], refused["code"]) == ("alibaba", 400, "SignatureDoesNotMatch")
    assert NUMBER not in caplog.text and SECRET not in caplog.text
