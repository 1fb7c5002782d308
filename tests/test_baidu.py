"""Baidu AI Cloud bank card OCR dialect.

Unit tests of bce-auth-v1 (the captured Python and Node SDK requests as known vectors)
and of the gateway's own tokens; then end to end: baidu-aip's AipOcr against a live
gateway on 127.0.0.1, on its token path (with its refetch on error 110) and on its
bce-auth-v1 path, success and the negative suite, each answered in Baidu's own codes.
"""
from __future__ import annotations

import base64
import logging
import threading
from urllib.parse import urlencode

import httpx
import msgspec
import pytest
import respx

from adapters import baidu, baidu_auth
from engine import errors as engine_errors
from gateway.app import create_app
from tests.fakes import GIF_BYTES, FakeEngine, fake_card_image, luhn_ok, make_reading, png_header
from tests.test_huawei_support import CheckingEngine, photo
from tests.test_tencent_support import Clock, public_resolver

pytest.importorskip("aip")
from aip import AipOcr  # noqa: E402

APP_ID = "1234567"
API_KEY = "cardgateBaiduApiKey0000"
SECRET_KEY = "cardgate-baidu-secret-key"
BCE_AK = "cardgateBceAccessKey00"
BCE_SK = "cardgate-bce-secret-access-key"
APPS = {APP_ID: {"api_key": API_KEY, "secret_key": SECRET_KEY, "access_key": BCE_AK, "secret_access_key": BCE_SK}}
NUMBER = "6225760088888883"  # Luhn-valid
CARD = fake_card_image(NUMBER)
MONTH = 31 * 24 * 3600

# The captured requests (../shared/reference/clients/captures/*baidu_bankcard_bce_signed.http), fake keys.
CAPTURE_SK = "baiduExampleSecretKey0000000000"
PY_CAPTURE = ("bce-auth-v1/baiduExampleApiKey000000/2026-11-21T19:22:33Z/1800/host;x-bce-date/"
              "f21845addf7ae3bed58363eaa3502b15b10225042db59539fcdfe83f8453da1a")
NODE_CAPTURE = ("bce-auth-v1/baiduExampleApiKey000000/2026-12-03T07:12:39Z/1800/content-type;host;x-bce-date/"
                "450ed86d80433f8293ee0de531bb683a8d1e7b8f804add57f8cdcdead528720b")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def card_engine(**kwargs) -> FakeEngine:
    return FakeEngine(make_reading(NUMBER), **kwargs)


@pytest.fixture
def serve(live_gateway):
    """serve(engine, ...) -> "http://127.0.0.1:PORT" of a gateway running only the Baidu dialect."""

    def start(engine=None, *, apps=APPS, allow_unsigned=False, clock=None, config=None, router=None):
        dialect = baidu.create({"apps": apps} if apps else {}, allow_unsigned)
        http_client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) if router else None
        app = create_app(config or {}, engine if engine is not None else card_engine(), clock=clock or Clock(),
                         allow_unsigned=allow_unsigned, dialects=[dialect], http_client=http_client,
                         resolver=public_resolver)
        return live_gateway(app)

    return start


def sdk(base: str, api_key: str = API_KEY, secret_key: str = SECRET_KEY, prefix: str = "") -> AipOcr:
    """The SDK pointed at the gateway: its two URLs are name-mangled private attributes (README §5.1)."""
    client = AipOcr(APP_ID, api_key, secret_key)
    client._AipBase__accessTokenUrl = base + prefix + baidu.TOKEN_PATH
    client._AipOcr__bankcardUrl = base + prefix + baidu.BANKCARD_PATH
    return client


# --- bce-auth-v1 and tokens, without a server --------------------------------------------


@pytest.mark.parametrize("authorization,query,headers", [
    (PY_CAPTURE, b"aipSdk=python&aipVersion=4.15.13", {"host": "127.0.0.1", "x-bce-date": "2026-11-21T19:22:33Z"}),
    (NODE_CAPTURE, b"aipSdk=node", {"host": "aip.baidubce.com", "x-bce-date": "2026-12-03T07:12:39Z",
                                     "content-type": "application/x-www-form-urlencoded"}),
])
def test_bce_verifies_the_captured_sdk_requests(authorization, query, headers):
    signed_at = baidu_auth.parse_authorization(authorization).signed_at
    secret_for = {"baiduExampleApiKey000000": CAPTURE_SK}.get
    assert baidu_auth.verify(authorization, secret_for, "POST", [baidu.BANKCARD_PATH], query, headers,
                             signed_at + 60) == "baiduExampleApiKey000000"
    for changed in ({**headers, "host": headers["host"] + ":8080"}, {**headers, "x-bce-date": "2026-01-01T00:00:00Z"}):
        with pytest.raises(baidu_auth.AuthFailure, match="mismatch"):
            baidu_auth.verify(authorization, secret_for, "POST", [baidu.BANKCARD_PATH], query, changed, signed_at + 60)
    with pytest.raises(baidu_auth.AuthFailure, match="mismatch"):
        baidu_auth.verify(authorization, secret_for, "POST", [baidu.BANKCARD_PATH], query + b"&x=1", headers, signed_at)
    with pytest.raises(baidu_auth.AuthFailure, match="expired"):
        baidu_auth.verify(authorization, secret_for, "POST", [baidu.BANKCARD_PATH], query, headers, signed_at + 1801)
    with pytest.raises(baidu_auth.AuthFailure, match="unknown_key"):
        baidu_auth.verify(authorization, {}.get, "POST", [baidu.BANKCARD_PATH], query, headers, signed_at)


def test_bce_sign_is_what_verify_checks():
    headers = {"host": "aip.baidubce.com", "x-bce-date": "2026-01-01T00:00:00Z", "content-type": "a b/c"}
    auth = baidu_auth.sign(BCE_AK, BCE_SK, "POST", baidu.BANKCARD_PATH, "b=2&a=%20x", headers,
                           ["content-type", "host", "x-bce-date"], 1767225600)
    assert baidu_auth.verify(auth, {BCE_AK: BCE_SK}.get, "POST", [baidu.BANKCARD_PATH], "a=%20x&b=2", headers,
                             1767225600) == BCE_AK
    with pytest.raises(baidu_auth.AuthFailure, match="mismatch"):
        baidu_auth.verify(auth, {BCE_AK: BCE_SK + "x"}.get, "POST", [baidu.BANKCARD_PATH], "a=%20x&b=2", headers, 1767225600)


@pytest.mark.parametrize("bad", ["bce-auth-v1/ak/2026-01-01T00:00:00Z/1800/x-bce-date/00",  # host not signed
                                 "bce-auth-v1/ak/yesterday/1800/host/00", "bce-auth-v2/ak/2026-01-01T00:00:00Z/1800/host/00",
                                 "bce-auth-v1/ak/2026-01-01T00:00:00Z/-5/host/00"])
def test_bce_malformed_authorization(bad):
    with pytest.raises(baidu_auth.AuthFailure, match="malformed"):
        baidu_auth.parse_authorization(bad)


def test_tokens_verify_under_their_secret_only_and_expire():
    token = baidu_auth.mint_token(APP_ID, API_KEY, SECRET_KEY, 1_700_000_000)
    parts = baidu_auth.read_token(token)
    assert token.startswith("24.") and token.endswith(f"-{APP_ID}") and parts.expires_in == 2592000
    baidu_auth.verify_token(parts, API_KEY, SECRET_KEY, 1_700_000_000 + 2592000)
    with pytest.raises(baidu_auth.AuthFailure, match="expired"):
        baidu_auth.verify_token(parts, API_KEY, SECRET_KEY, 1_700_000_000 + 2592001)
    with pytest.raises(baidu_auth.AuthFailure, match="mismatch"):
        baidu_auth.verify_token(parts, API_KEY, "rotated-secret", 1_700_000_000)
    forged = token.replace(".2592000.", ".9592000.")
    with pytest.raises(baidu_auth.AuthFailure, match="mismatch"):
        baidu_auth.verify_token(baidu_auth.read_token(forged), API_KEY, SECRET_KEY, 1_700_000_000)
    for junk in ("", "24.abc", "25." + token[3:], token.rsplit("-", 1)[0]):
        with pytest.raises(baidu_auth.AuthFailure, match="malformed"):
            baidu_auth.read_token(junk)


def test_error_table_is_whole():
    assert baidu.ERRORS.unanswered() == []
    # API errors carry a number; the token endpoint's OAuth errors a string (their own shape).
    assert all(isinstance(entry.code, int) for entry in baidu.ERRORS.values() if entry.key not in baidu.TOKEN_ERROR_KEYS)


def test_settings_refuse_half_key_pairs():
    with pytest.raises(ValueError, match="secret_key"):
        baidu.create({"apps": {"1": {"api_key": "k"}}}, False)
    with pytest.raises(ValueError):
        baidu.create({"apps": {"1": {"api_key": "k", "secret_key": "s", "colour": "red"}}}, False)


def test_direction_follows_the_card_top_edge():
    reading = make_reading(NUMBER)
    assert baidu.direction(reading) == 0
    turned = msgspec.structs.replace(reading, card_quad=((100.0, 900.0), (100.0, 100.0), (700.0, 100.0), (700.0, 900.0)))
    assert baidu.direction(turned) == 1  # top edge points up: turned 90 degrees counter-clockwise
    upside_down = msgspec.structs.replace(reading, card_quad=((900.0, 700.0), (100.0, 700.0), (100.0, 100.0), (900.0, 100.0)))
    assert baidu.direction(upside_down) == 2


# --- the SDK end to end: the token path ---------------------------------------------------------


def test_token_path_reads_a_card(serve):
    client = sdk(serve())
    answer = client.bankcard(CARD)
    assert answer["result"] == {"bank_card_number": "6225 7600 8888 8883", "valid_date": "08/22",
                                "bank_card_type": 2, "bank_name": "招商银行", "holder_name": ""}
    assert isinstance(answer["log_id"], int) and 0 < answer["log_id"] < 2**53
    assert answer["direction"] == 0
    assert client._isCloudUser is False  # it used the token: the scope had brain_all_scope
    token = client._authObj["access_token"]
    assert token.startswith("24.") and client._authObj["expires_in"] == 2592000


def test_options_location_and_quality(serve):
    engine = card_engine()
    answer = sdk(serve(engine)).bankcard(CARD, {"location": "true", "detect_quality": "true"})
    result = answer["result"]
    assert result["bank_card_number_location"] == {"left": 211, "top": 452, "width": 793, "height": 60}
    quality = result["card_quality"]
    assert quality["IsClear"] == 1 and quality["IsComplete"] == 1
    assert quality["IsClear_propobility"] == quality["IsClear_probability"] == 0.87
    assert engine.last_options.want_quality and engine.last_options.check_border
    plain = sdk(serve()).bankcard(CARD)["result"]
    assert "card_quality" not in plain and "bank_card_number_location" not in plain


def test_refetches_the_token_on_110(serve):
    client = sdk(serve())
    assert client.bankcard(CARD)["result"]["bank_card_number"]
    stale = client._authObj["access_token"].replace(".2592000.", ".2591999.")  # not one of ours any more
    client._authObj["access_token"] = stale
    answer = client.bankcard(CARD)  # 110, a new token, and the call again
    assert answer["result"]["bank_card_number"] == "6225 7600 8888 8883"
    assert client._authObj["access_token"] != stale


def test_expired_token_is_111(serve):
    clock = Clock()
    client = sdk(serve(clock=clock))
    client.bankcard(CARD)
    clock.offset = MONTH  # the SDK still trusts its token: only the gateway's clock moved
    assert client.bankcard(CARD)["error_code"] == 111


def test_token_errors_in_oauth_shape(serve):
    base = serve()
    unknown = httpx.get(base + baidu.TOKEN_PATH, params={"grant_type": "client_credentials", "client_id": "nobody",
                                                         "client_secret": "x"})
    assert unknown.status_code == 401
    assert unknown.json() == {"error": "invalid_client", "error_description": "unknown client id"}
    wrong = httpx.post(base + baidu.TOKEN_PATH, data={"grant_type": "client_credentials", "client_id": API_KEY,
                                                      "client_secret": "wrong"})
    assert wrong.json() == {"error": "invalid_client", "error_description": "Client authentication failed"}
    grant = httpx.get(base + baidu.TOKEN_PATH, params={"grant_type": "password", "client_id": API_KEY})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("how", ["get-query", "post-query", "post-form"])
def test_token_in_every_placement(serve, how):
    base = serve()
    params = {"grant_type": "client_credentials", "client_id": API_KEY, "client_secret": SECRET_KEY}
    if how == "get-query":
        answer = httpx.get(base + baidu.TOKEN_PATH, params=params)
    elif how == "post-query":
        answer = httpx.post(base + baidu.TOKEN_PATH, params=params)
    else:  # what the Node SDK sends
        answer = httpx.post(base + baidu.TOKEN_PATH, content=urlencode(params),
                            headers={"content-type": "application/x-www-form-urlencoded"})
    token = answer.json()
    assert "brain_all_scope" in token["scope"].split() and token["expires_in"] == 2592000
    # The Node SDK glues ?aipSdk=node onto the token value; the Host it sends is the vendor's.
    card = httpx.post(f"{base}{baidu.BANKCARD_PATH}?aipSdk=node&access_token={token['access_token']}?aipSdk=node",
                      content="image=" + base64.b64encode(CARD).decode().replace("+", "%2B").replace("/", "%2F")
                      .replace("=", "%3D"),
                      headers={"content-type": "application/x-www-form-urlencoded", "host": "aip.baidubce.com"})
    assert card.json()["result"]["bank_card_number"] == "6225 7600 8888 8883"


def test_no_token_and_no_signature_is_100(serve):
    answer = httpx.post(serve() + baidu.BANKCARD_PATH + "?aipSdk=node", data={"image": base64.b64encode(CARD).decode()})
    assert answer.status_code == 200 and answer.json()["error_code"] == 100
    assert httpx.post(serve() + baidu.BANKCARD_PATH + "?access_token=junk", data={}).json()["error_code"] == 110


# --- the SDK end to end: the bce-auth-v1 path ---------------------------------------------------


def test_bce_path_reads_a_card(serve):
    client = sdk(serve(), BCE_AK, BCE_SK)  # the token endpoint knows no such API key: the SDK signs instead
    answer = client.bankcard(CARD)
    assert client._isCloudUser is True
    assert answer["result"]["bank_card_number"] == "6225 7600 8888 8883"


def test_prefixed_routes(serve):
    base = serve()
    assert sdk(base, prefix="/baidu").bankcard(CARD)["result"]["bank_card_number"]
    assert sdk(base, BCE_AK, BCE_SK, prefix="/baidu").bankcard(CARD)["result"]["bank_card_number"]
    assert httpx.post(base + "/baidu/rest/2.0/ocr/v1/idcard").json()["error_code"] == 3


def test_bce_signed_by_node_with_the_vendor_host(serve):
    base = serve()
    headers = {"host": "aip.baidubce.com", "content-type": "application/x-www-form-urlencoded",
               "x-bce-date": baidu_auth.bce_timestamp(Clock()())}
    headers["authorization"] = baidu_auth.sign(BCE_AK, BCE_SK, "POST", baidu.BANKCARD_PATH, "aipSdk=node", headers,
                                               ["content-type", "host", "x-bce-date"], Clock()())
    answer = httpx.post(base + baidu.BANKCARD_PATH + "?aipSdk=node", headers=headers,
                        content=urlencode({"image": base64.b64encode(CARD).decode()}))
    assert answer.json()["result"]["bank_card_number"] == "6225 7600 8888 8883"


def test_wrong_secret_and_unknown_key(serve):
    base = serve()
    for client in (sdk(base, API_KEY, "wrong"), sdk(base, BCE_AK, "wrong"), sdk(base, "unknown-key", "x")):
        answer = client.bankcard(CARD)  # token refused -> bce-auth-v1 with these keys -> refused
        assert answer["error_code"] == 14 and answer["error_msg"] == "IAM Certification failed"


@pytest.mark.parametrize("offset", [-1900, 1900])
def test_expired_bce_timestamp(serve, offset):
    client = sdk(serve(clock=Clock(offset)), BCE_AK, BCE_SK)
    assert client.bankcard(CARD)["error_code"] == 14


def test_bce_inside_the_window(serve):
    assert sdk(serve(clock=Clock(1700)), BCE_AK, BCE_SK).bankcard(CARD)["result"]["bank_card_number"]


def test_tampered_signed_request(serve):
    """bce-auth-v1 signs the method, path, query and the named headers (not the body, as Baidu's)."""
    client = sdk(serve(), BCE_AK, BCE_SK)
    send = client.s.post

    def tampered(url, **kwargs):
        kwargs["params"] = {**kwargs["params"], "aipVersion": "9.9.9"}
        return send(url, **kwargs)

    client.s.post = tampered
    assert client.bankcard(CARD)["error_code"] == 14


# --- images and recognition -------------------------------------------------------------------------


def test_missing_and_empty_image(serve):
    base = serve()
    assert sdk(base).bankcard(b"")["error_code"] == 216200
    missing = sdk(base)._request(sdk(base)._AipOcr__bankcardUrl, {"location": "true"})
    assert missing == {"error_code": 216101, "error_msg": "param image not exist", "log_id": missing["log_id"]}


def test_bad_images(serve):
    client = sdk(serve(CheckingEngine(make_reading(NUMBER))))
    assert client.bankcard(b"not an image at all")["error_code"] == 216201
    assert client.bankcard(GIF_BYTES)["error_code"] == 216201
    assert client.bankcard(photo(12, 40))["error_code"] == 216202  # shorter side under 15 px
    assert client.bankcard(png_header(9000, 300))["error_code"] == 216202  # longer side over 8192 px
    assert client.bankcard(photo())["result"]["bank_card_number"]


def test_bad_option_and_base64(serve):
    base = serve()
    assert sdk(base).bankcard(CARD, {"detect_quality": "maybe"})["error_code"] == 216100
    answer = httpx.post(serve() + baidu.BANKCARD_PATH + "?access_token=x", data={})
    assert answer.json()["error_code"] == 110


def test_oversize(serve):
    client = sdk(serve())
    answer = client.bankcard(b"\xff\xd8\xff" + b"\0" * (baidu.LIMITS.max_image_bytes + 10))
    assert answer["error_code"] == 216202 and answer["error_msg"] == "image size error"
    body = httpx.post(serve() + baidu.BANKCARD_PATH, content=b"image=" + b"A" * baidu.LIMITS.max_body_bytes,
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert body.json()["error_code"] == 216202 and body.json()["error_msg"] == "input oversize"


def test_url_variant_and_precedence(serve):
    router = respx.Router()
    router.get("https://img.example.com/card.jpg").respond(200, content=fake_card_image("4111111111111111"))
    router.get("https://img.example.com/missing.jpg").respond(404)
    router.get("https://img.example.com/slow.jpg").mock(side_effect=httpx.ReadTimeout("slow"))
    engine = card_engine(number_from_image=True)
    client = sdk(serve(engine, router=router))
    assert client.bankcardUrl("https://img.example.com/card.jpg")["result"]["bank_card_number"] == "4111 1111 1111 1111"
    # image wins over url
    both = client._request(client._AipOcr__bankcardUrl, {"image": base64.b64encode(CARD).decode(),
                                                         "url": "https://img.example.com/card.jpg"})
    assert both["result"]["bank_card_number"] == "6225 7600 8888 8883"
    assert client.bankcardUrl("https://img.example.com/missing.jpg")["error_code"] == 282113
    assert client.bankcardUrl("https://img.example.com/slow.jpg")["error_code"] == 282112
    assert client.bankcardUrl("img.example.com/card.jpg")["error_code"] == 282111
    assert client.bankcardUrl("https://img.example.com/" + "a" * 1100)["error_code"] == 282114


@pytest.mark.parametrize("error,code", [
    (engine_errors.NoCardFoundError(), 216631),
    (engine_errors.ImageBlurredError(), 216631),
    (engine_errors.NumberUnreadableError(), 216630),
    (engine_errors.ImageDecodeError(), 216201),
    (engine_errors.EngineError("odd"), 282000),
    (RuntimeError("bug"), 282000),
])
def test_engine_errors(serve, error, code):
    assert sdk(serve(card_engine(error=error))).bankcard(CARD)["error_code"] == code


def test_invalid_number_is_not_handed_out(serve):
    answer = sdk(serve(FakeEngine(make_reading("6225760088888888")))).bankcard(CARD)  # Luhn fails
    assert answer["error_code"] == 216631 and "result" not in answer


def test_busy_engine_and_rate_limit_are_18(serve):
    base = serve(card_engine(delay_s=0.6), config={"engine": {"threads": 1, "queue_size": 0}})
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(sdk(base).bankcard(CARD))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any("result" in r for r in results) and any(r.get("error_code") == 18 for r in results)

    limited = serve(config={"rate_limits": {"credentials": {BCE_AK: 0.001}, "burst": 1}})
    client = sdk(limited, BCE_AK, BCE_SK)
    assert "result" in client.bankcard(CARD)
    assert client.bankcard(CARD)["error_code"] == 18


def test_metrics_count_baidu_codes(serve):
    base = serve()
    sdk(base).bankcard(CARD)
    sdk(base).bankcard(b"")
    text = httpx.get(base + "/metrics").text
    assert 'dialect="baidu"' in text and 'code="216200"' in text and 'code="ok"' in text


def test_open_gateway_serves_without_apps(serve):
    base = serve(apps={}, allow_unsigned=True)
    assert sdk(base, "any", "thing").bankcard(CARD)["result"]["bank_card_number"]
    refused = sdk(serve(apps={}, allow_unsigned=False), "any", "thing").bankcard(CARD)
    assert refused["error_code"] == 14


def test_access_log_lines_without_card_data_or_secrets(serve, caplog):
    base = serve()
    with caplog.at_level(logging.INFO, logger="cardgate.access"):
        client = sdk(base)
        client.bankcard(CARD)
        sdk(base, BCE_AK, "wrong").bankcard(CARD)
    lines = [r.fields for r in caplog.records if r.name == "cardgate.access"]
    token, card, refused_token, refused = lines
    assert (token["dialect"], token["route"], token["status"], token["error"]) == ("baidu", baidu.TOKEN_PATH, 200, None)
    assert card["route"] == baidu.BANKCARD_PATH and card["credential"] == API_KEY and card["error"] is None
    assert refused_token["code"] == "invalid_client" and refused_token["status"] == 401
    assert refused["code"] == "14" and refused["error"] == "14"
    for secret in (NUMBER, SECRET_KEY, BCE_SK, client._authObj["access_token"]):
        assert secret not in caplog.text


def test_log_ids_cannot_pass_for_card_numbers():
    """A 16-digit log_id passing Luhn is flagged by log scanners as a card number: none is."""
    dialect = baidu.create({}, True)
    ids = [dialect.new_request_id() for _ in range(10_000)]
    assert all(i.isdigit() and 13 <= len(i) <= 19 and 0 < int(i) < 2**53 for i in ids)
    assert not [i for i in ids if luhn_ok(i)]
