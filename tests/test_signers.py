"""One signer per vendor: what adapters/<vendor>_auth.py signs (its httpx.Auth included), it verifies.

The migration client and the benchmark sign with the same functions, so a change to
one side's canonicalisation shows up here and in their own tests at once.
"""
from __future__ import annotations

import base64
import json

import httpx
import pytest

from adapters import huawei_auth, myqcloud_auth, tencent_auth
from adapters.base import VendorError
from core.request import IncomingRequest
from adapters.myqcloud import App
from gateway.app import create_app
from tests.fakes import FakeEngine, fake_card_image

NOW = 1_795_000_000.0
PROJECT = "0123456789abcdef0123456789abcdef"


def received(request: httpx.Request) -> IncomingRequest:
    """An httpx request as the gateway receives it."""
    raw = request.url.raw_path
    path, _, query = raw.partition(b"?")
    return IncomingRequest(
        method=request.method,
        path=httpx.URL(path.decode()).path,
        raw_path=path,
        query_string=query,
        headers=[(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw],
        body=request.content,
    )


def signed(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    return next(auth.auth_flow(request))


def tencent_request(body: bytes = b'{"ImageBase64": "AAAA"}') -> httpx.Request:
    return httpx.Request("POST", "http://127.0.0.1:8080/", headers={"Content-Type": "application/json"}, content=body)


def test_tc3_auth_signs_what_verify_tc3_accepts():
    req = received(signed(tencent_auth.TC3Auth("AKID", "secret", clock=lambda: NOW), tencent_request()))
    assert tencent_auth.verify_tc3(req, {"AKID": "secret"}, NOW) == "AKID"
    with pytest.raises(VendorError, match="SignatureFailure"):
        tencent_auth.verify_tc3(req, {"AKID": "other secret"}, NOW)
    req.body = b'{"ImageBase64": "BBBB"}'
    with pytest.raises(VendorError, match="SignatureFailure"):
        tencent_auth.verify_tc3(req, {"AKID": "secret"}, NOW)


def test_tc3_auth_signs_a_get_over_its_query():
    request = httpx.Request("GET", "http://127.0.0.1:8080/?Action=BankCardOCR&ImageUrl=https%3A%2F%2Fx%2Fa.jpg",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    req = received(signed(tencent_auth.TC3Auth("AKID", "secret", clock=lambda: NOW), request))
    assert tencent_auth.verify_tc3(req, {"AKID": "secret"}, NOW) == "AKID"
    req.query_string = req.query_string.replace(b"a.jpg", b"b.jpg")
    with pytest.raises(VendorError, match="SignatureFailure"):
        tencent_auth.verify_tc3(req, {"AKID": "secret"}, NOW)


def test_huawei_auth_signs_what_verify_aksk_accepts():
    request = httpx.Request("POST", f"http://127.0.0.1:8080/v2/{PROJECT}/ocr/bankcard?b=x%20y&a=1",
                            headers={"Content-Type": "application/json;charset=utf-8", "X-Project-Id": PROJECT},
                            content=b'{"image": "AAAA"}')
    req = received(signed(huawei_auth.HuaweiAuth("AK", "SK", clock=lambda: NOW), request))
    assert huawei_auth.verify_aksk(req, {"AK": "SK"}, NOW) == "AK"
    signed_names = req.header("authorization").split("SignedHeaders=")[1].split(",")[0]
    assert signed_names == "content-type;host;x-project-id;x-sdk-date"
    with pytest.raises(VendorError):
        huawei_auth.verify_aksk(req, {"AK": "other"}, NOW)
    req.query_string = b"a=2&b=x%20y"
    with pytest.raises(VendorError):
        huawei_auth.verify_aksk(req, {"AK": "SK"}, NOW)


def test_myqcloud_sign_is_what_verify_accepts_and_expires():
    apps = {"1250000000": App(secret_id="AKIDMYQ", secret_key="myq-secret")}
    header = myqcloud_auth.sign("1250000000", "bucket", "AKIDMYQ", "myq-secret", NOW, 60)
    signature = myqcloud_auth.verify(header, apps, NOW + 60)
    assert signature.get("b") == "bucket" and not signature.single_use
    with pytest.raises(VendorError) as expired:
        myqcloud_auth.verify(header, apps, NOW + 60 + myqcloud_auth.EXPIRY_GRACE_S + 1)
    assert expired.value.code == "9"
    single = myqcloud_auth.verify(myqcloud_auth.sign("1250000000", "", "AKIDMYQ", "myq-secret", NOW, 0), apps, NOW)
    assert single.single_use and single.signed_at == int(NOW)
    with pytest.raises(VendorError) as wrong:
        myqcloud_auth.verify(myqcloud_auth.sign("1250000000", "", "AKIDMYQ", "guess", NOW, 60), apps, NOW)
    assert wrong.value.code == "5"


# --- through a live gateway, with httpx's own auth hook ------------------------------------------

SIGNED = {
    "tencent": {"credentials": {"AKIDCLIENT": "tencent-secret"}},
    "huawei": {"credentials": {"HWAK": "huawei-sk"}},
    "myqcloud": {"apps": {"1250000000": {"secret_id": "AKIDMYQ", "secret_key": "myq-secret"}}},
}
NUMBER = "4111111111111111"  # Luhn-valid: Tencent answers an invalid number with an error
IMAGE = base64.b64encode(fake_card_image(NUMBER)).decode()


@pytest.fixture
def gateway_url(live_gateway):
    return live_gateway(create_app(SIGNED, FakeEngine(number_from_image=True), allow_unsigned=False))


def test_each_auth_class_gets_a_card_read_from_the_gateway(gateway_url):
    with httpx.Client(base_url=gateway_url, timeout=20) as client:
        tencent = client.post("/", content=json.dumps({"ImageBase64": IMAGE}),
                              headers={"Content-Type": "application/json", "X-TC-Action": "BankCardOCR", "X-TC-Version": "2018-11-19"},
                              auth=tencent_auth.TC3Auth("AKIDCLIENT", "tencent-secret"))
        huawei = client.post(f"/v2/{PROJECT}/ocr/bankcard", content=json.dumps({"image": IMAGE}),
                             headers={"Content-Type": "application/json;charset=utf-8"},
                             auth=huawei_auth.HuaweiAuth("HWAK", "huawei-sk"))
        myqcloud = client.post("/ocr/bankcard", json={"appid": "1250000000", "image": IMAGE},
                               auth=myqcloud_auth.MyqcloudAuth("1250000000", "AKIDMYQ", "myq-secret"))
        refused = client.post("/", content=json.dumps({"ImageBase64": IMAGE}),
                              headers={"Content-Type": "application/json", "X-TC-Action": "BankCardOCR", "X-TC-Version": "2018-11-19"},
                              auth=tencent_auth.TC3Auth("AKIDCLIENT", "wrong-secret"))
    assert tencent.json()["Response"].get("CardNo") == NUMBER, tencent.text
    assert huawei.status_code == 200 and huawei.json()["result"]["card_number"].replace(" ", "") == NUMBER, huawei.text
    assert myqcloud.json()["code"] == 0, myqcloud.text
    assert refused.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
