"""The vendors' Node.js SDKs against a live gateway on 127.0.0.1 (clients/README.md §11).

tests/node/ pins `tencentcloud-sdk-nodejs-ocr`, `@huaweicloud/huaweicloud-sdk-core`,
`baidu-aip-sdk` and `@alicloud/ocr-api20210707` (package.json and its lock); `.ci/run`
installs them with `npm ci` when node is there. Each test runs one small
script (tests/node/*.js) that makes one SDK call and prints what the SDK resolved or threw.
Without node, or without the installed packages, these tests skip and say why.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import respx

from adapters import alibaba, baidu, huawei, tencent
from gateway.app import create_app
from tests.fakes import FakeEngine, fake_card_image, make_reading
from tests.test_huawei_support import CheckingEngine
from tests.test_tencent_support import Clock, public_resolver

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE = shutil.which("node")
PACKAGES = ("tencentcloud-sdk-nodejs-ocr", "tencentcloud-sdk-nodejs-common", "@huaweicloud/huaweicloud-sdk-core",
            "baidu-aip-sdk", "@alicloud/ocr-api20210707", "@alicloud/openapi-core")

if NODE is None:
    pytest.skip("node is not installed: the Node.js SDK tests need it", allow_module_level=True)
_missing = [p for p in PACKAGES if not (NODE_DIR / "node_modules" / p / "package.json").is_file()]
if _missing:
    pytest.skip(f"Node packages not installed ({', '.join(_missing)}): run `npm ci` in tests/node",
                allow_module_level=True)

APP_ID, API_KEY, SECRET_KEY = "1234567", "cardgateBaiduApiKey0000", "cardgate-baidu-secret-key"
BCE_AK, BCE_SK = "cardgateBceAccessKey00", "cardgate-bce-secret-access-key"
AK, SECRET = "LTAIcardgateTEST0000000", "cardgate-alibaba-test-secret"
TC_ID, TC_KEY = "AKIDcardgateNodeTEST0000000000001", "cardgate-tencent-node-secret"
HW_AK, HW_SK, HW_PROJECT = "HWNODETESTAK00000001", "cardgate-huawei-node-secret", "0123456789abcdef0123456789abcdef"
NUMBER = "6225760088888883"
CARD = fake_card_image(NUMBER)
SCRIPT_TIMEOUT_S = 60  # a hung SDK fails the test instead of the run


@pytest.fixture
def gateway(live_gateway):
    """gateway(engine, clock=..., config=...) -> base URL of a gateway serving four dialects, every one keyed."""

    def start(engine=None, *, clock=None, config=None):
        router = respx.Router()
        router.get("https://img.example.com/card.jpg").respond(200, content=fake_card_image("4111111111111111"))
        dialects = [
            baidu.create({"apps": {APP_ID: {"api_key": API_KEY, "secret_key": SECRET_KEY, "access_key": BCE_AK,
                                            "secret_access_key": BCE_SK}}}, False),
            alibaba.create({"credentials": {AK: SECRET}}, False),
            tencent.create({"credentials": {TC_ID: TC_KEY}}, False),
            huawei.create({"credentials": {HW_AK: HW_SK}}, False),
        ]
        app = create_app(config or {}, engine or FakeEngine(make_reading(NUMBER), number_from_image=True),
                         clock=clock or Clock(), allow_unsigned=False, dialects=dialects, resolver=public_resolver,
                         http_client=httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)))
        return live_gateway(app)

    return start


def node(script: str, *args: str) -> dict:
    done = subprocess.run([NODE, str(NODE_DIR / script), *args], cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=SCRIPT_TIMEOUT_S, env={"PATH": "/usr/bin:/bin", "NO_PROXY": "127.0.0.1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def image(tmp_path):
    def write(data: bytes = CARD) -> str:
        path = tmp_path / f"card-{len(data)}.jpg"
        path.write_bytes(data)
        return str(path)

    return write


# --- baidu-aip-sdk -------------------------------------------------------------------------------


def test_baidu_token_path(gateway, image):
    out = node("baidu.js", gateway(), APP_ID, API_KEY, SECRET_KEY, image(), '{"detect_quality": "true"}')
    result = out["answer"]["result"]
    assert result["bank_card_number"] == "6225 7600 8888 8883" and "card_quality" in result


def test_baidu_bce_path(gateway, image):
    out = node("baidu.js", gateway(), APP_ID, BCE_AK, BCE_SK, image())  # token refused: the SDK signs
    assert out["answer"]["result"]["bank_card_number"] == "6225 7600 8888 8883"


def test_baidu_negative(gateway, image):
    base = gateway(CheckingEngine(make_reading(NUMBER)))
    assert node("baidu.js", base, APP_ID, API_KEY, "wrong", image())["answer"]["error_code"] == 14
    assert node("baidu.js", base, APP_ID, BCE_AK, "wrong", image())["answer"]["error_code"] == 14
    assert node("baidu.js", base, APP_ID, API_KEY, SECRET_KEY, image(b""))["answer"]["error_code"] == 216200
    assert node("baidu.js", base, APP_ID, API_KEY, SECRET_KEY, image(b"not an image"))["answer"]["error_code"] == 216201
    expired = gateway(clock=Clock(1900))
    assert node("baidu.js", expired, APP_ID, BCE_AK, BCE_SK, image())["answer"]["error_code"] == 14


# --- @alicloud/ocr-api20210707 ------------------------------------------------------------------------


def test_alibaba_body_streamed_chunked(gateway, image):
    out = node("alibaba.js", gateway().removeprefix("http://"), AK, SECRET, "--body", image())
    assert out["statusCode"] == 200 and out["data"]["data"]["cardNumber"] == NUMBER


def test_alibaba_url(gateway):
    out = node("alibaba.js", gateway().removeprefix("http://"), AK, SECRET, "--url", "https://img.example.com/card.jpg")
    assert out["data"]["data"]["cardNumber"] == "4111111111111111"


@pytest.mark.parametrize("ak,secret,data,code,status", [
    (AK, "wrong", CARD, "SignatureDoesNotMatch", 400),
    ("LTAIunknown", SECRET, CARD, "InvalidAccessKeyId.NotFound", 404),
    (AK, SECRET, b"not an image", "unsupportedImageFormat", 415),
])
def test_alibaba_negative(gateway, image, ak, secret, data, code, status):
    out = node("alibaba.js", gateway(CheckingEngine(make_reading(NUMBER))).removeprefix("http://"), ak, secret,
               "--body", image(data))
    assert (out["error"], out["statusCode"], out["name"]) == (code, status, "ClientError")
    assert out["requestId"]


def test_alibaba_expired_and_throttled(gateway, image):
    out = node("alibaba.js", gateway(clock=Clock(1000)).removeprefix("http://"), AK, SECRET, "--body", image())
    assert (out["error"], out["statusCode"]) == ("InvalidTimeStamp.Expired", 400)
    limited = gateway(config={"rate_limits": {"credentials": {AK: 0.001}, "burst": 1}}).removeprefix("http://")
    assert node("alibaba.js", limited, AK, SECRET, "--body", image())["statusCode"] == 200
    out = node("alibaba.js", limited, AK, SECRET, "--body", image())
    assert (out["error"], out["name"]) == ("Throttling.User", "ThrottlingError")


# --- tencentcloud-sdk-nodejs-ocr ----------------------------------------------------------------
# TC3 from Node signs Host without the port and the scope service "127" (the endpoint up to its
# first dot); the legacy methods sign Host with the port, like Python (clients/README.md §11.1).

TENCENT_SIGNING = [("TC3-HMAC-SHA256", "POST"), ("TC3-HMAC-SHA256", "GET"), ("HmacSHA1", "POST"),
                   ("HmacSHA256", "POST")]


@pytest.mark.parametrize("sign_method,method", TENCENT_SIGNING)
def test_tencent_reads_a_card(gateway, image, sign_method, method):
    out = node("tencent.js", gateway().removeprefix("http://"), TC_ID, TC_KEY, sign_method, method, image())
    answer = out["answer"]  # data.Response, as a plain object with every key kept
    assert (answer["CardNo"], answer["ValidDate"]) == (NUMBER, "08/2022")
    assert answer["RequestId"] and "Error" not in answer


@pytest.mark.parametrize("sign_method,method", TENCENT_SIGNING)
def test_tencent_wrong_secret(gateway, image, sign_method, method):
    out = node("tencent.js", gateway(CheckingEngine(make_reading(NUMBER))).removeprefix("http://"), TC_ID, "wrong",
               sign_method, method, image())
    assert (out["error"], out["name"]) == ("AuthFailure.SignatureFailure", "TencentCloudSDKHttpException")
    assert out["requestId"]


# --- @huaweicloud/huaweicloud-sdk-core (no OCR package on npm) -------------------------------------


def test_huawei_reads_a_card(gateway, image):
    out = node("huawei.js", gateway(), HW_AK, HW_SK, HW_PROJECT, image())
    answer = out["answer"]  # the JSON body, with core's httpStatusCode added (no X-Request-Id)
    assert set(answer) == {"result", "httpStatusCode"} and answer["httpStatusCode"] == 200
    assert answer["result"]["card_number"] == "6225 7600 8888 8883"


def test_huawei_wrong_secret(gateway, image):
    out = node("huawei.js", gateway(CheckingEngine(make_reading(NUMBER))), HW_AK, "wrong", HW_PROJECT, image())
    assert (out["name"], out["httpStatusCode"], out["errorCode"]) == ("ClientRequestException", 401, "APIG.0301")
    assert out["errorMsg"] == "Incorrect IAM authentication information: verify aksk signature fail"
    assert out["requestId"]  # core reads it from the X-Request-Id header
