"""The hex dialect (POST /hex/ocrapi/creditcardocr), against the spec, with FakeEngine."""
from __future__ import annotations

import asyncio
import base64
import json

import httpx
import msgspec
import pytest
from starlette.testclient import TestClient

from adapters import hex as hexmod
from adapters.base import VendorError
from engine import errors as engine_errors
from engine.types import WARNINGS
from core import errors as gateway_errors
from gateway.app import create_app
from gateway.metrics import parse_text
from tests.fakes import (
    DEFAULT_NUMBER,
    GIF_BYTES,
    TINY_JPEG,
    TINY_JPEG_B64,
    FakeEngine,
    fake_card_image,
    make_reading,
)

PATH = "/hex/ocrapi/creditcardocr"
IMAGE = base64.b64encode(fake_card_image()).decode()


async def public_resolver(host, port):
    return ["93.184.216.34"]


def hex_client(engine=None, settings=None, allow_unsigned=True, config=None):
    config = dict(config or {})
    config["hex"] = settings or {}
    dialect = hexmod.create(config["hex"], allow_unsigned)
    app = create_app(config, engine or FakeEngine(), dialects=[dialect], resolver=public_resolver)
    return TestClient(app)


def post(client, body, **kwargs):
    response = client.post(PATH, json=body, **kwargs)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    return response


# --- success ---------------------------------------------------------------------------


def test_default_answer_matches_the_spec():
    engine = FakeEngine()
    r = post(hex_client(engine), {"image": IMAGE, "session_id": "sess-42"})
    assert r.status_code == 200
    body = r.json()
    assert body["errorcode"] == 0 and body["errormsg"] == "OK"
    assert body["session_id"] == "sess-42"
    assert isinstance(body["timecost"], float) and 0 <= body["timecost"] < 5
    items = {item["item"]: item for item in body["items"]}
    assert list(items) == ["卡号", "卡类型", "卡名字", "银行信息", "有效期"]
    number = items["卡号"]
    assert number["itemstring"] == DEFAULT_NUMBER and number["itemconf"] == pytest.approx(0.98)
    # coordinates in the rectified card (the reading's number_box), not in the photo
    assert number["itemcoord"] == {"x": 72, "y": 300, "width": 712, "height": 50}
    assert number["wordcoordpoint"] == []
    assert items["卡类型"]["itemstring"] == "贷记卡"
    assert items["卡名字"]["itemstring"] == "招商银行信用卡"
    assert items["银行信息"]["itemstring"] == "招商银行(03080000)"
    assert items["有效期"]["itemstring"] == "08/22"
    assert items["有效期"]["itemcoord"] == {"x": 330, "y": 372, "width": 82, "height": 28}
    # ret_card_no_image defaults to true, border cut to false
    assert body["special_image"] == {"card_no": TINY_JPEG_B64}
    for absent in ("warncode", "warnmsg", "recognize_warn_code", "recognize_warn_msg", "quality_value"):
        assert absent not in body
    assert engine.last_options.want_card_no_image and not engine.last_options.want_border_cut_image


def test_no_bank_no_expiry_only_the_number():
    engine = FakeEngine(make_reading(bank=None, expiry=None))
    body = post(hex_client(engine), {"image": IMAGE}).json()
    assert [item["item"] for item in body["items"]] == ["卡号"]
    assert body["session_id"] == ""


ALL_ON = {flag: True for flag in hexmod.FLAGS}


@pytest.mark.parametrize("nested", [True, False], ids=["options", "top-level"])
def test_every_option(nested):
    engine = FakeEngine(make_reading(warnings=list(WARNINGS), quality=64))
    body = {"image": IMAGE, "session_id": "s", **({"options": ALL_ON} if nested else ALL_ON)}
    out = post(hex_client(engine), body).json()
    options = engine.last_options
    assert options.want_border_cut_image and options.want_card_no_image
    assert options.check_border and options.check_copy and options.check_reshoot and options.check_reflection
    assert options.want_quality
    assert out["special_image"] == {"border_cut": TINY_JPEG_B64, "card_no": TINY_JPEG_B64}
    assert out["quality_value"] == 64
    assert out["recognize_warn_code"] == [-9110, -9111, -9112, -9113, -9114]
    assert out["recognize_warn_msg"] == [
        "WARN_CREDITCARD_INVALID_DATE",
        "WARN_CREDITCARD_CORNER_EXCEED",
        "WARN_CREDITCARD_REFLECT_LIGHT",
        "WARN_CREDITCARD_COPY_CARD",
        "WARN_CREDITCARD_RESHOOT_CARD",
    ]
    assert out["warncode"] == -9110 and out["warnmsg"] == "WARN_CREDITCARD_INVALID_DATE"


def test_all_options_off():
    engine = FakeEngine(make_reading(warnings=["reshoot"]))
    off = {flag: False for flag in hexmod.FLAGS}
    out = post(hex_client(engine), {"image": IMAGE, "options": off}).json()
    assert "special_image" not in out and "warncode" not in out and "recognize_warn_code" not in out
    assert engine.last_options == engine.last_options.__class__(max_pixels=40_000_000)


def test_nested_options_override_top_level():
    engine = FakeEngine()
    out = post(
        hex_client(engine),
        {"image": IMAGE, "ret_card_no_image": True, "enable_quality_value": True,
         "options": {"ret_card_no_image": False}},
    ).json()
    assert "special_image" not in out and out["quality_value"] == 87
    assert engine.last_options.want_quality and not engine.last_options.want_card_no_image


@pytest.mark.parametrize("value,expected", [(1, True), (0, False), ("true", True), ("False", False), (None, False)])
def test_flag_spellings(value, expected):
    engine = FakeEngine()
    post(hex_client(engine), {"image": IMAGE, "options": {"enable_border_check": value}})
    assert engine.last_options.check_border is expected


def test_single_warncode_without_warnings_is_zero():
    out = post(hex_client(), {"image": IMAGE, "ret_warncode_flag": True, "enable_recognize_warn_code": True}).json()
    assert out["warncode"] == 0 and out["warnmsg"] == ""
    assert out["recognize_warn_code"] == [] and out["recognize_warn_msg"] == []


def test_single_warncode_is_the_first_in_table_order():
    engine = FakeEngine(make_reading(warnings=["reshoot", "border_incomplete"]))
    out = post(hex_client(engine), {"image": IMAGE, "options": {
        "ret_warncode_flag": True, "enable_border_check": True, "enable_reshoot_check": True}}).json()
    assert out["warncode"] == -9111 and out["warnmsg"] == "WARN_CREDITCARD_CORNER_EXCEED"
    assert "recognize_warn_code" not in out


def test_warnings_for_checks_not_asked_are_not_reported():
    engine = FakeEngine(make_reading(warnings=["photocopy", "reshoot", "border_incomplete"]))
    out = post(hex_client(engine), {"image": IMAGE, "options": {
        "enable_recognize_warn_code": True, "enable_copy_check": True}}).json()
    assert out["recognize_warn_code"] == [-9113]


@pytest.mark.parametrize("name,code", [(n, c) for n, (c, _) in hexmod.WARNINGS.items()])
def test_each_warning_code(name, code):
    engine = FakeEngine(make_reading(warnings=[name]))
    out = post(hex_client(engine), {"image": IMAGE, "options": ALL_ON}).json()
    assert out["recognize_warn_code"] == [code] and out["warncode"] == code


# --- image sources -----------------------------------------------------------------------


def test_url_wins_over_image(respx_mock):
    respx_mock.get("http://cards.example.com/c.jpg").respond(200, content=fake_card_image("4111111111111111"))
    engine = FakeEngine(number_from_image=True)
    out = post(hex_client(engine), {"image": IMAGE, "url": "http://cards.example.com/c.jpg"}).json()
    assert out["items"][0]["itemstring"] == "4111111111111111"


def test_empty_url_falls_back_to_image():
    engine = FakeEngine(number_from_image=True)
    out = post(hex_client(engine), {"image": IMAGE, "url": ""}).json()
    assert out["errorcode"] == 0 and engine.images == [fake_card_image()]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/c.jpg", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/c.jpg",
            "file:///etc/passwd"]
)
def test_url_to_private_address_is_a_decode_failure(url):
    engine = FakeEngine()
    out = post(hex_client(engine), {"url": url}).json()
    assert out["errorcode"] == -1102 and out["errormsg"] == "SDK_IMAGE_DECODE_FAILED"
    assert engine.calls == []


def test_url_timeout_is_a_decode_failure(respx_mock):
    respx_mock.get("http://cards.example.com/slow.jpg").mock(side_effect=httpx.ConnectTimeout("slow"))
    assert post(hex_client(), {"url": "http://cards.example.com/slow.jpg"}).json()["errorcode"] == -1102


# --- every error code ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"image": ""},
        {"session_id": "x"},
        {"image": "not base64"},
        {"image": IMAGE[:-1]},
        {"image": IMAGE[:10] + "\n" + IMAGE[10:]},
        {"image": base64.b64encode(GIF_BYTES).decode()},
        {"image": 12345},
        {"url": ["x"]},
    ],
    ids=["empty", "empty-image", "no-image", "junk", "unpadded", "newline", "gif", "number", "url-list"],
)
def test_image_problems_are_1102(body):
    engine = FakeEngine()
    out = post(hex_client(engine), body).json()
    assert out["errorcode"] == -1102 and out["errormsg"] == "SDK_IMAGE_DECODE_FAILED"
    assert engine.calls == []


def test_session_id_is_echoed_on_errors():
    out = post(hex_client(), {"image": "jun!", "session_id": "abc"}).json()
    assert out == {"errorcode": -1102, "errormsg": "SDK_IMAGE_DECODE_FAILED", "session_id": "abc"}


def test_oversize_body_and_image_are_1102():
    client = hex_client(settings={"max_body_bytes": 2000, "max_image_bytes": 500})
    assert client.post(PATH, content=b"{" + b" " * 3000 + b"}").json()["errorcode"] == -1102
    big = base64.b64encode(b"\xff\xd8\xff" + b"\0" * 600).decode()
    assert post(client, {"image": big}).json()["errorcode"] == -1102


@pytest.mark.parametrize(
    "error,code,msg",
    [
        (engine_errors.ImageDecodeError("truncated"), -1102, "SDK_IMAGE_DECODE_FAILED"),
        (engine_errors.ImageTooLargeError(), -1102, "SDK_IMAGE_DECODE_FAILED"),
        (engine_errors.ImageTooSmallError(), -9010, "CREDITCARD_OCR_PREPROCESS_ERROR"),
        (engine_errors.NumberUnreadableError(), -9011, "CREDITCARD_OCR_RECOG_FAILED"),
        (engine_errors.ImageBlurredError(), -9012, "CREDITCARD_OCR_IMAGE_BLUR"),
        (engine_errors.NoCardFoundError(), -9013, "ERROR_NOT_A_CREDITCARD"),
        (RuntimeError("engine bug"), -5208, "OCR_SERVER_INTERN_ERROR"),
    ],
)
def test_engine_errors(error, code, msg):
    out = post(hex_client(FakeEngine(error=error)), {"image": IMAGE, "session_id": "e"}).json()
    assert out == {"errorcode": code, "errormsg": msg, "session_id": "e"}


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b'{"image": "x", "options": 3}',
                                  b'{"image": "x", "options": {"ret_card_no_image": "maybe"}}', b"\xff\xfe"])
def test_unreadable_requests_are_9010(body):
    r = hex_client().post(PATH, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["errorcode"] == -9010


def test_invalid_number_is_9014_when_configured():
    invalid = FakeEngine()  # 6225760088888888 fails Luhn, as in the spec's own example
    assert post(hex_client(invalid), {"image": IMAGE}).json()["errorcode"] == 0
    out = post(hex_client(invalid, {"reject_invalid_number": True}), {"image": IMAGE, "session_id": "q"}).json()
    assert out["errorcode"] == -9014 and out["errormsg"] == "ERROR_CREDITCARD_ILLEGAL" and out["session_id"] == "q"
    luhn_ok = FakeEngine(make_reading(number="4111111111111111"))
    assert post(hex_client(luhn_ok, {"reject_invalid_number": True}), {"image": IMAGE}).json()["errorcode"] == 0


def test_error_code_for_is_the_errorcode_of_the_answer():
    assert hexmod.error_code_for(gateway_errors.BadBase64Error()) == -1102
    assert hexmod.error_code_for(engine_errors.NoCardFoundError()) == -9013
    assert hexmod.error_code_for(VendorError("AUTH_FAILED")) == -1
    assert hexmod.error_code_for(VendorError("NOT_A_HEX_NAME")) == -5208
    assert hexmod.error_code_for(RuntimeError("bug")) == -5208


def test_metrics_and_access_log_carry_the_hex_errorcode(caplog):

    client = hex_client()
    with caplog.at_level("INFO", logger="cardgate.access"):
        out = post(client, {"image": IMAGE[:-7] + "@@@@@@@"}).json()
    assert out["errorcode"] == -1102
    access = [r.fields for r in caplog.records if r.name == "cardgate.access"]
    assert [line["code"] for line in access] == ["-1102"]
    metrics = parse_text(client.get("/metrics").text)
    labels = frozenset({"dialect": "hex", "status": "200", "code": "-1102"}.items())
    assert metrics.get(("cardgate_requests_total", labels)) == 1


def test_busy_engine_is_5208():
    dialect = hexmod.create({}, True)
    response = dialect.render_error(gateway_errors.EngineBusyError(), "rid")
    assert response.status_code == 200
    assert msgspec.json.decode(response.body)["errorcode"] == -5208


def test_busy_engine_is_5208_live(live_gateway):
    engine = FakeEngine(delay_s=0.4)
    app = create_app({"engine": {"threads": 1, "queue_size": 0}}, engine, dialects=[hexmod.create({}, True)])
    url = live_gateway(app)

    async def go():
        async with httpx.AsyncClient(base_url=url) as client:
            return await asyncio.gather(*(client.post(PATH, json={"image": IMAGE}) for _ in range(3)))

    codes = sorted(r.json()["errorcode"] for r in asyncio.run(go()))
    assert codes == [-5208, -5208, 0]


def test_unknown_hex_path_and_wrong_method():
    client = hex_client()
    r = client.post("/hex/ocrapi/idcardocr", json={"image": IMAGE})
    assert r.status_code == 404 and r.json()["errorcode"] == -5208
    r = client.get(PATH)
    assert r.status_code == 404 and r.json()["errorcode"] == -5208


# --- auth ---------------------------------------------------------------------------------------


def test_open_by_default_on_loopback():
    assert post(hex_client(allow_unsigned=True), {"image": IMAGE}).json()["errorcode"] == 0


def test_no_token_and_unsigned_not_allowed_is_401_unless_open():
    r = post(hex_client(allow_unsigned=False), {"image": IMAGE, "session_id": "z"})
    assert r.status_code == 401 and r.json() == {"errorcode": -1, "errormsg": "AUTH_FAILED", "session_id": "z"}
    assert post(hex_client(settings={"open": True}, allow_unsigned=False), {"image": IMAGE}).json()["errorcode"] == 0


@pytest.mark.parametrize(
    "headers,ok",
    [
        ({"Authorization": "tok-1"}, True),
        ({"Authorization": "Bearer tok-2"}, True),
        ({"Authorization": "bearer   tok-1 "}, True),
        ({"Authorization": "tok-3"}, False),
        ({"Authorization": "Bearer "}, False),
        ({}, False),
    ],
)
def test_token_auth(headers, ok):
    engine = FakeEngine()
    client = hex_client(engine, {"token": "tok-1", "tokens": ["tok-2"]}, allow_unsigned=True)
    r = post(client, {"image": IMAGE}, headers=headers)
    if ok:
        assert r.status_code == 200 and r.json()["errorcode"] == 0
    else:
        assert r.status_code == 401 and r.json()["errorcode"] == -1 and engine.calls == []


def test_token_in_a_custom_header():
    client = hex_client(settings={"token": "tok-1", "token_header": "X-Hex-Token"})
    assert post(client, {"image": IMAGE}, headers={"X-Hex-Token": "tok-1"}).json()["errorcode"] == 0
    assert post(client, {"image": IMAGE}, headers={"Authorization": "tok-1"}).status_code == 401


def test_bad_token_settings_refused():
    with pytest.raises(ValueError):
        hexmod.create({"tokens": [""]}, True)


# --- wire, end to end -----------------------------------------------------------------------------


def test_plain_http_end_to_end_with_distinct_cards(live_gateway):
    engine = FakeEngine(number_from_image=True)
    app = create_app({"engine": {"threads": 4, "queue_size": 64}}, engine)
    url = live_gateway(app)
    numbers = [f"40000000{i:08d}" for i in range(24)]

    async def go():
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            return await asyncio.gather(*(
                client.post(PATH, json={"image": base64.b64encode(fake_card_image(n)).decode(), "session_id": n})
                for n in numbers
            ))

    responses = asyncio.run(go())
    for number, response in zip(numbers, responses):
        body = response.json()
        assert body["errorcode"] == 0 and body["session_id"] == number
        assert body["items"][0]["itemstring"] == number
    assert len({r.headers["x-request-id"] for r in responses}) == len(numbers)
