"""Tencent legacy myqcloud `/ocr/bankcard` dialect.

No SDK has a bank card call for this API (clients/README.md §2.1), so the
clients here are what real users wrote: `requests` posting JSON or multipart,
signed with qcloud_image's official `Auth.get_sign`, plus a hand-built `u=0`
layout and a single-use (`e=0`) signature. Unit tests of the signature decoder
use the captured request's header as a known vector.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import threading
import time

import httpx
import pytest
import requests
import respx
from starlette.testclient import TestClient

from adapters import myqcloud
from adapters.base import VendorError
from core.request import IncomingRequest
from engine import errors as engine_errors
from core import errors as gw
from gateway.app import create_app
from tests.fakes import GIF_BYTES, FakeEngine, fake_card_image, luhn_ok, make_reading
from tests.test_huawei_support import CheckingEngine, photo, truncated_jpeg
from tests.test_tencent_support import Clock, public_resolver, real_cards, real_engine

qcloud_auth = pytest.importorskip("qcloud_image.auth")

APPID, SECRET_ID, SECRET_KEY = "1250000000", "AKIDMYQ", "myq-secret-key"
OTHER_APPID = "1250000001"
SETTINGS = {
    "apps": {
        APPID: {"secret_id": SECRET_ID, "secret_key": SECRET_KEY},
        OTHER_APPID: {"secret_id": "AKIDOTHER", "secret_key": "other-secret", "buckets": ["cards"]},
    }
}
NUMBER = "6225760088888883"  # the doc's example number with a valid Luhn digit
CARD = fake_card_image(NUMBER)
CARD_B64 = base64.b64encode(CARD).decode()
CAPTURED_AUTH = (
    "EPd9jYpY+QYXkJarS36mr06YtfhhPTEyNTAwMDAwMDAmYj10ZXN0Jms9QUtJRG15cWNsb3VkRVhBTVBMRTAwMDAwMDAwMDAwMDAm"
    "ZT0xNzk1MjkyNTUyJnQ9MTc5NTI4ODk1MiZyPTc4NDA5MjkwOCZmPQ=="
)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# --- helpers -----------------------------------------------------------------------


def official_sign(appid=APPID, secret_id=SECRET_ID, secret_key=SECRET_KEY, bucket="test", howlong=30) -> str:
    """qcloud_image's own signer: a,b,k,e,t,r,f= layout."""
    return qcloud_auth.Auth(appid, secret_id, secret_key).get_sign(bucket, howlong).decode()


def hand_sign(plain: str, secret_key=SECRET_KEY) -> str:
    """The sign many hand-written clients build, with any field layout."""
    digest = hmac.new(secret_key.encode(), plain.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest + plain.encode()).decode()


def card_engine(**kwargs) -> FakeEngine:
    return FakeEngine(make_reading(NUMBER), **kwargs)


@pytest.fixture
def serve(live_gateway):
    """serve(engine, ...) -> base URL of a gateway running only the myqcloud dialect."""

    def start(engine=None, *, settings=SETTINGS, allow_unsigned=False, clock=None, config=None, router=None,
              resolver=public_resolver):
        dialect = myqcloud.create(settings, allow_unsigned)
        http_client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) if router else None
        app = create_app(config or {}, engine if engine is not None else card_engine(), clock=clock or Clock(),
                         allow_unsigned=allow_unsigned, dialects=[dialect], http_client=http_client,
                         resolver=resolver)
        return live_gateway(app)

    return start


def post_json(base, body, sign=None, path="/ocr/bankcard", **headers) -> requests.Response:
    if sign is not None:
        headers["Authorization"] = sign
    return requests.post(base + path, data=json.dumps(body), headers={"Content-Type": "application/json", **headers},
                         timeout=15)


def post_multipart(base, fields, image=CARD, sign=None, path="/ocr/bankcard") -> requests.Response:
    headers = {"Authorization": sign} if sign is not None else {}
    files = {"image": ("card.jpg", image, "image/jpeg")} if image is not None else None
    return requests.post(base + path, data=fields, files=files, headers=headers, timeout=15)


def code_of(response: requests.Response) -> int:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "data"}
    assert re.fullmatch(r"[1-9]\d{16}", body["data"]["session_id"])
    assert body["message"] == (myqcloud.ERRORS[str(body["code"])].message if body["code"] else myqcloud.SUCCESS_MESSAGE)
    return body["code"]


def card_body(**extra):
    return {"appid": APPID, "bucket": "test", "image": CARD_B64, **extra}


# --- the signature, without a server -------------------------------------------------


def test_captured_authorization_decodes_to_its_plaintext():
    sign = myqcloud.decode_signature(CAPTURED_AUTH)
    assert sign.plain == b"a=1250000000&b=test&k=AKIDmyqcloudEXAMPLE0000000000000&e=1795292552&t=1795288952&r=784092908&f="
    assert sign.fields["a"] == APPID and sign.fields["b"] == "test" and sign.fields["f"] == ""
    assert len(sign.digest) == 20


def _req(sign, body=None, content_type="application/json") -> IncomingRequest:
    data = json.dumps(body if body is not None else card_body()).encode()
    return IncomingRequest("POST", "/ocr/bankcard", b"/ocr/bankcard", b"",
                           [("content-type", content_type), ("authorization", sign)], data)


def test_captured_sign_is_refused_without_its_secret():
    dialect = myqcloud.create({"apps": {APPID: {"secret_id": "AKIDmyqcloudEXAMPLE0000000000000", "secret_key": "guess"}}}, False)
    with pytest.raises(VendorError) as info:
        dialect.authenticate(_req(CAPTURED_AUTH), 1795288960)
    assert info.value.code == "5"


@pytest.mark.parametrize(
    "plain",
    [
        "a={a}&b=test&k={k}&e={e}&t={t}&r=123&f=",  # qcloud_image
        "a={a}&b=test&k={k}&e={e}&t={t}&r=123&u=0",  # hand-written clients
        "a={a}&k={k}&e={e}&t={t}&r=123&u=0&f=",  # no bucket
        "k={k}&a={a}&t={t}&e={e}",  # any order
    ],
)
def test_any_field_layout_verifies_over_the_text_as_sent(plain):
    now = int(time.time())
    sign = hand_sign(plain.format(a=APPID, k=SECRET_ID, e=now + 60, t=now))
    assert myqcloud.create(SETTINGS, False).authenticate(_req(sign), now) == SECRET_ID


@pytest.mark.parametrize(
    "header,code",
    [
        ("!!!not base64!!!", "8"),
        (base64.b64encode(b"short").decode(), "5"),
        (base64.b64encode(b"\0" * 20 + b"a=1&k=2").decode(), "5"),  # no e
        (base64.b64encode(b"\0" * 20 + b"garbage").decode(), "5"),
        (base64.b64encode(b"\0" * 20 + b"a=1250000000&k=AKIDMYQ&e=soon").decode(), "5"),
    ],
)
def test_malformed_signatures(header, code):
    with pytest.raises(VendorError) as info:
        myqcloud.create(SETTINGS, False).authenticate(_req(header), time.time())
    assert info.value.code == code


def test_hex_digest_clients_are_refused():
    """CryptoJS clients embed the 40-char hex digest; the real service's answer is unknown, we refuse."""
    now = int(time.time())
    plain = f"a={APPID}&b=test&k={SECRET_ID}&e={now + 60}&t={now}&r=1&u=0"
    hexdigest = hmac.new(SECRET_KEY.encode(), plain.encode(), hashlib.sha1).hexdigest()
    with pytest.raises(VendorError) as info:
        myqcloud.create(SETTINGS, False).authenticate(_req(base64.b64encode(hexdigest.encode() + plain.encode()).decode()), now)
    assert info.value.code == "5"


def test_unpadded_signature_is_accepted():
    sign = official_sign().rstrip("=")
    assert myqcloud.create(SETTINGS, False).authenticate(_req(sign), time.time()) == SECRET_ID


def test_error_table_is_whole():
    doc_codes = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 200, 201, 202, 203,
                 -1102, -1300, -1301, -1304, -5208, -9011, -9010]
    assert {str(code) for code in doc_codes} <= set(myqcloud.ERRORS)
    assert myqcloud.ERRORS.unanswered() == []
    assert myqcloud.error_code_for(VendorError("internal")) == -5208
    assert myqcloud.error_code_for(VendorError("0")) == -5208
    assert myqcloud.error_code_for(ValueError()) == -5208
    for name in dir(gw):
        kind = getattr(gw, name)
        if isinstance(kind, type) and issubclass(kind, gw.GatewayError) and kind is not gw.GatewayError:
            assert myqcloud.error_code_for(kind("x")) != -5208, kind


def test_config_needs_both_secrets():
    with pytest.raises(ValueError):
        myqcloud.create({"apps": {APPID: {"secret_id": SECRET_ID}}}, False)


# --- end to end ------------------------------------------------------------------------


def _check_items(body, number=NUMBER):
    assert body["code"] == 0 and body["message"] == "OK"
    items = body["data"]["items"]
    assert [i["item"] for i in items] == ["卡号", "卡类型", "卡名字", "银行信息", "有效期"]
    values = {i["item"]: i["itemstring"] for i in items}
    assert values == {"卡号": number, "卡类型": "贷记卡", "卡名字": "招商银行信用卡",
                      "银行信息": "招商银行(03080000)", "有效期": "08/2022"}
    for item in items:
        assert set(item) == {"item", "itemstring", "itemconf", "itemcoord", "coords", "words", "candword"}
        assert set(item["itemcoord"]) == {"x", "y", "width", "height"}
        assert 0.0 <= item["itemconf"] <= 1.0
    # make_reading's number quad spans x 211..1004, y 452..512
    assert items[0]["itemcoord"] == {"x": 211, "y": 452, "width": 793, "height": 60}
    assert items[0]["itemconf"] == pytest.approx(0.98)
    assert items[4]["itemcoord"] == {"x": 520, "y": 560, "width": 90, "height": 32}
    assert re.fullmatch(r"[1-9]\d{16}", body["data"]["session_id"])


def test_json_with_official_signer(serve):
    engine = card_engine()
    r = post_json(serve(engine), card_body(), official_sign())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    _check_items(r.json())
    assert engine.images == [CARD]


def test_multipart_with_official_signer(serve):
    engine = card_engine()
    r = post_multipart(serve(engine), {"appid": APPID, "bucket": "test"}, sign=official_sign())
    _check_items(r.json())
    assert engine.images == [CARD]


def test_hand_written_u0_layout_and_text_json(serve):
    now = int(time.time())
    sign = hand_sign(f"a={APPID}&b=test&k={SECRET_ID}&e={now + 10}&t={now}&r={random.randint(0, 10**9)}&u=0")
    r = post_json(serve(), {"appid": int(APPID), "image": CARD_B64}, sign, **{"Content-Type": "text/json"})
    _check_items(r.json())


def test_vendor_host_and_prefixed_route(serve):
    """DNS/hosts redirection keeps Host: recognition.image.myqcloud.com; the prefix serves the same API."""
    base = serve()
    r = post_json(base, card_body(), official_sign(), Host="recognition.image.myqcloud.com")
    _check_items(r.json())
    r = post_multipart(base, {"appid": APPID}, sign=official_sign(), path="/myqcloud/ocr/bankcard")
    _check_items(r.json())


def test_url_wins_over_image(serve):
    router = respx.Router()
    router.get("http://test-1250000000.image.myqcloud.com/test.jpg").respond(200, content=fake_card_image("4111111111111111"))
    engine = card_engine(number_from_image=True)
    r = post_json(serve(engine, router=router),
                  card_body(url="http://test-1250000000.image.myqcloud.com/test.jpg"), official_sign())
    assert r.json()["data"]["items"][0]["itemstring"] == "4111111111111111"
    assert engine.images == [fake_card_image("4111111111111111")]


def test_open_gateway_needs_no_signature(serve):
    base = serve(settings={}, allow_unsigned=True)
    _check_items(post_json(base, {"appid": APPID, "image": CARD_B64}).json())
    _check_items(post_json(base, {"appid": APPID, "image": CARD_B64}, "anything at all").json())
    assert code_of(post_json(base, {"image": CARD_B64})) == -1301  # appid is still required


def test_no_apps_without_allow_unsigned_refuses(serve):
    base = serve(settings={}, allow_unsigned=False)
    assert code_of(post_json(base, card_body())) == 4
    assert code_of(post_json(base, card_body(), official_sign())) == 10


# --- the negative suite ----------------------------------------------------------------------


def test_auth_failures(serve):
    now = int(time.time())
    base = serve()
    assert code_of(post_json(base, card_body())) == 4
    assert code_of(post_json(base, card_body(), "")) == 4
    assert code_of(post_json(base, card_body(), "%%%")) == 8
    # tampered: the plaintext's expiry pushed out, the digest kept
    raw = base64.b64decode(official_sign())
    tampered = base64.b64encode(raw[:20] + raw[20:].replace(b"&e=", b"&e=9")).decode()
    assert code_of(post_json(base, card_body(), tampered)) == 5
    assert code_of(post_json(base, card_body(), official_sign(secret_key="wrong"))) == 5
    assert code_of(post_json(base, card_body(appid="1259999999"), official_sign(appid="1259999999"))) == 10
    assert code_of(post_json(base, card_body(), official_sign(secret_id="AKIDOTHER"))) == 11
    assert code_of(post_json(base, card_body(appid=OTHER_APPID), official_sign())) == 12  # wrong appid in the body
    assert code_of(post_json(base, card_body(bucket="other"), official_sign())) == 6
    other = official_sign(OTHER_APPID, "AKIDOTHER", "other-secret", bucket="photos")
    assert code_of(post_json(base, card_body(appid=OTHER_APPID, bucket="photos"), other)) == 16
    ok = official_sign(OTHER_APPID, "AKIDOTHER", "other-secret", bucket="cards")
    assert post_json(base, card_body(appid=OTHER_APPID, bucket="cards"), ok).json()["code"] == 0
    expired = hand_sign(f"a={APPID}&b=test&k={SECRET_ID}&e={now - 11}&t={now - 41}&r=1&f=")
    assert code_of(post_json(base, card_body(), expired)) == 9


def test_expired_by_the_gateway_clock(serve):
    sign = official_sign(howlong=30)
    assert post_json(serve(clock=Clock(35)), card_body(), sign).json()["code"] == 0  # within the grace
    assert code_of(post_json(serve(clock=Clock(45)), card_body(), sign)) == 9


def test_multipart_is_checked_against_the_signature_too(serve):
    base = serve()
    assert code_of(post_multipart(base, {"appid": OTHER_APPID}, sign=official_sign())) == 12
    assert code_of(post_multipart(base, {"appid": APPID, "bucket": "x"}, sign=official_sign())) == 6


def test_single_use_signature_is_refused_on_replay(serve):
    now = int(time.time())
    sign = hand_sign(f"a={APPID}&b=test&k={SECRET_ID}&e=0&t={now}&r=77&f=card.jpg")
    base = serve()
    assert post_json(base, card_body(), sign).json()["code"] == 0
    assert code_of(post_json(base, card_body(), sign)) == 13
    stale = hand_sign(f"a={APPID}&b=test&k={SECRET_ID}&e=0&t={now - 400}&r=78&f=card.jpg")
    assert code_of(post_json(base, card_body(), stale)) == 9


def test_single_use_signature_is_refused_by_another_worker(tmp_path):
    """--workers 2 is two apps in two processes, one replay file: what one accepted, the other refuses."""
    config = {"myqcloud": SETTINGS, "replay": {"path": str(tmp_path / "replay.sqlite3")}}
    workers = [create_app(config, card_engine(), allow_unsigned=False) for _ in range(2)]
    sign = hand_sign(f"a={APPID}&b=test&k={SECRET_ID}&e=0&t={int(time.time())}&r=79&f=card.jpg")
    with TestClient(workers[0]) as first, TestClient(workers[1]) as second:
        post = lambda client: client.post("/ocr/bankcard", json=card_body(), headers={"Authorization": sign})
        assert post(first).json()["code"] == 0
        codes = [post(second).json()["code"] for _ in range(10)] + [post(first).json()["code"] for _ in range(10)]
        assert codes == [13] * 20


def test_multi_use_signature_can_be_reused(serve):
    base, sign = serve(), official_sign()
    assert [post_json(base, card_body(), sign).json()["code"] for _ in range(3)] == [0, 0, 0]


@pytest.mark.parametrize(
    "body,code",
    [
        ({"bucket": "test", "image": CARD_B64}, -1301),  # no appid
        ({"appid": "", "image": CARD_B64}, -1301),
        ({"appid": APPID}, 18),  # neither image nor url
        ({"appid": APPID, "url": ""}, 17),
        ({"appid": APPID, "image": ""}, -1300),
        ({"appid": APPID, "url": "http://img.example.com/" + "a" * 2100}, -1304),
        ({"appid": APPID, "image": "not base64!"}, -1102),
        ({"appid": APPID, "image": CARD_B64[:-1]}, -1102),
        ({"appid": APPID, "image": 42}, 21),
        ({"appid": ["x"], "image": CARD_B64}, 21),
    ],
)
def test_bad_fields(serve, body, code):
    engine = card_engine()
    sign = official_sign() if body.get("appid") == APPID else None
    base = serve(engine, settings={}, allow_unsigned=True) if sign is None else serve(engine)
    assert code_of(post_json(base, body, sign)) == code
    assert engine.calls == []


def test_bad_bodies(serve):
    base = serve(settings={}, allow_unsigned=True)
    assert code_of(requests.post(base + "/ocr/bankcard", data=b"{nope", headers={"Content-Type": "application/json"})) == 3
    assert code_of(requests.post(base + "/ocr/bankcard", data=b"[1]", headers={"Content-Type": "application/json"})) == 3
    assert code_of(requests.post(base + "/ocr/bankcard", data={"appid": APPID})) == 3  # urlencoded: not this API
    r = requests.post(base + "/ocr/bankcard", data=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert code_of(r) in (3, -1301)  # python-multipart reads a cut-off body as no parts
    assert code_of(post_multipart(base, {"appid": APPID}, image=b"")) == -1300
    no_image = requests.post(base + "/ocr/bankcard", files={"appid": (None, APPID)})  # multipart, no image part
    assert code_of(no_image) == 18


def test_image_faults(serve):
    engine = CheckingEngine(make_reading(NUMBER))
    base = serve(engine)
    assert code_of(post_json(base, card_body(image=base64.b64encode(GIF_BYTES).decode()), official_sign())) == -1102
    assert code_of(post_multipart(base, {"appid": APPID}, image=GIF_BYTES, sign=official_sign())) == -1102
    assert code_of(post_json(base, card_body(image=base64.b64encode(truncated_jpeg()).decode()), official_sign())) == -1102
    assert code_of(post_multipart(base, {"appid": APPID}, image=truncated_jpeg(), sign=official_sign())) == -1102
    assert post_multipart(base, {"appid": APPID}, image=photo(), sign=official_sign()).json()["code"] == 0


def test_oversize_body(serve):
    engine = card_engine()
    big = fake_card_image(NUMBER, padding=myqcloud.BODY_MAX)
    assert code_of(post_multipart(serve(engine), {"appid": APPID}, image=big, sign=official_sign())) == 20
    assert engine.calls == []


def test_url_failures(serve):
    router = respx.Router()
    router.get("http://img.example.com/missing.jpg").respond(404)
    router.get("http://img.example.com/slow.jpg").mock(side_effect=httpx.ConnectTimeout("slow"))
    router.get("http://img.example.com/huge.jpg").respond(200, content=b"\xff\xd8\xff" + b"\0" * myqcloud.BODY_MAX)
    base = serve(router=router)
    for url, code in [("http://img.example.com/missing.jpg", -1308), ("http://img.example.com/slow.jpg", -1308),
                      ("file:///etc/passwd", -1308), ("http://img.example.com/huge.jpg", 20)]:
        assert code_of(post_json(base, card_body(url=url), official_sign())) == code, url


def test_private_url_is_refused(serve):
    async def private(host, port):
        return ["192.168.1.10"]

    router = respx.Router()
    route = router.get("http://nas.example.com/card.jpg").respond(200, content=CARD)
    base = serve(router=router, resolver=private)
    assert code_of(post_json(base, card_body(url="http://nas.example.com/card.jpg"), official_sign())) == -1308
    assert code_of(post_json(base, card_body(url="http://127.0.0.1:1/card.jpg"), official_sign())) == -1308
    assert not route.called


@pytest.mark.parametrize(
    "error,code",
    [
        (engine_errors.NoCardFoundError(), -9010),
        (engine_errors.ImageTooSmallError(), -9010),
        (engine_errors.NumberUnreadableError(), -9011),
        (engine_errors.ImageBlurredError(), -9011),
        (engine_errors.ImageDecodeError(), -1102),
        (engine_errors.ImageTooLargeError(), 20),
        (engine_errors.EngineError("odd"), -5208),
        (RuntimeError("bug"), -5208),
    ],
)
def test_engine_errors(serve, error, code):
    assert code_of(post_json(serve(card_engine(error=error)), card_body(), official_sign())) == code


def test_invalid_number_is_not_handed_out(serve):
    engine = FakeEngine(make_reading("6225760088888888"))  # Luhn fails
    r = post_json(serve(engine), card_body(), official_sign())
    assert code_of(r) == -9011 and "6225760088888888" not in r.text


def test_busy_engine_is_rate_limited(serve):
    base = serve(card_engine(delay_s=0.6), config={"engine": {"threads": 1, "queue_size": 0}})
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(post_json(base, card_body(), official_sign()).json()["code"]))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0 in codes and 15 in codes


def test_unknown_path_and_method(serve):
    base = serve()
    r = requests.post(base + "/myqcloud/ocr/idcard", json={})
    assert r.status_code == 404 and code_of(r) == 3
    r = requests.get(base + "/ocr/bankcard")
    assert r.status_code == 404 and code_of(r) == 3


def test_session_ids_are_fresh(serve):
    base, sign = serve(), official_sign()
    ids = {post_json(base, card_body(), sign).json()["data"]["session_id"] for _ in range(3)}
    assert len(ids) == 3


def test_session_ids_cannot_pass_for_card_numbers():
    """Log scanners flag 13-19 digit runs that pass Luhn; the doc's 17-digit session_id must never be one."""
    dialect = myqcloud.create({}, True)
    ids = [dialect.new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[1-9]\d{16}", i) for i in ids)
    assert not [i for i in ids if luhn_ok(i)]
    assert len(set(ids)) == len(ids)


def test_real_engine_reads_real_cards(serve):
    """The real engine behind a multipart upload: photos the engine reads directly come out right."""
    engine = real_engine()
    cards = real_cards(engine)
    base = serve(engine)
    right = 0
    for image, number in cards:
        body = post_multipart(base, {"appid": APPID}, image=image, sign=official_sign()).json()
        if body["code"] != 0:
            assert body["code"] in (-9010, -9011), body
            continue
        right += body["data"]["items"][0]["itemstring"] == number
    assert right == len(cards)
