"""The web console and /_cardgate/health (gateway/console/, issue #22).

The console's answers per dialect must be the dialects' own: each is checked against the same
request sent through the app for real. Access: off away from loopback without credentials, a
wrong password refused, rate limited, and nothing of the image or the number in the logs.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.errors import NoCardFoundError
from gateway.app import create_app
from gateway.config import Console
from gateway.console import access
from core.errors import EngineBusyError
from tests.fakes import GIF_BYTES, FakeEngine, fake_card_image, make_reading

NUMBER = "6225760088888883"  # Luhn-valid: every dialect answers it
MASKED = "622576******8883"
REPO = Path(__file__).resolve().parent.parent

# Fields of an answer that differ between two calls whatever they answer: time taken, random ids.
VOLATILE = {"timecost", "time_used", "image_id"}  # image_id: Face++ draws one per request


class CheckingEngine(FakeEngine):
    """FakeEngine that, like engine/checks.py, reports a warning only when its check was asked for."""

    FLAGS = {"border_incomplete": "check_border", "reflection": "check_reflection", "photocopy": "check_copy",
             "reshoot": "check_reshoot"}

    def read(self, image, options):
        reading = super().read(image, options)
        reading.warnings = [w for w in reading.warnings if w not in self.FLAGS or getattr(options, self.FLAGS[w])]
        return reading


def console_client(config=None, engine=None, **kw) -> TestClient:
    return TestClient(create_app(config or {}, engine or FakeEngine(make_reading(NUMBER)), **kw))


def fixed_request_ids(app) -> None:
    """Every dialect of `app` gives every answer the same request id, so two answers can be compared."""
    for dialect in app.state.gateway.dialects:
        fixed = dialect.new_request_id()  # the dialect's own id format, drawn once
        dialect.new_request_id = lambda fixed=fixed: fixed


def comparable(body: str):
    try:
        data = json.loads(body)
    except ValueError:
        return body

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(data)


# --- /_cardgate/health ----------------------------------------------------------------------------


def test_health_names_version_weights_dialects_auth_and_queue():
    config = {
        "engine": {"queue_size": 3, "threads": 2},
        "rate_limits": {"per_second": 4.0, "burst": 9, "credentials": {"AKIDEXAMPLE": 50.0}},
        "tencent": {"credentials": {"AKIDEXAMPLE": "tencent-secret-key"}},
        "huawei": {"tokens": ["t1"], "credentials": {"HWAK": "sk"}},
        "hex": {"token": "hex-token"},
    }
    with console_client(config, allow_unsigned=True) as client:
        health = client.get("/_cardgate/health").json()
        app = client.app
    assert health["version"] == importlib.metadata.version("cardgate")
    weights = sorted((REPO / "engine" / "weights").glob("*.pt"))
    assert weights and health["engine"]["weights"] == {
        p.name: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in weights
    }
    assert health["engine"]["ready"] is True
    assert (health["engine"]["queue_size"], health["engine"]["threads"]) == (3, 2)
    assert health["rate_limits"] == {"per_second": 4.0, "burst": 9, "per_credential_overrides": 1}
    assert "AKIDEXAMPLE" not in json.dumps(health)  # key ids stay in the config
    by_name = {d["name"]: d for d in health["dialects"]}
    assert [d.name for d in app.state.gateway.dialects] == list(by_name)
    assert by_name["tencent"]["auth"] == "signed"
    assert by_name["huawei"]["auth"] == "signed+token"
    assert by_name["hex"]["auth"] == "token"
    assert by_name["facepp"]["auth"] == "open"  # no keys, loopback: unsigned requests served
    for dialect in app.state.gateway.dialects:
        listed = by_name[dialect.name]["native"] + by_name[dialect.name]["prefixed"]
        assert {(e["path"], tuple(e["methods"])) for e in listed} == {(p, tuple(sorted(m))) for p, m in dialect.routes()}
    assert by_name["tencent"]["native"] == [{"path": "/", "methods": ["GET", "POST"]}]
    assert {e["path"] for e in by_name["tencent"]["prefixed"]} == {"/tencent", "/tencent/"}


def test_health_auth_mode_is_signed_not_open_once_unsigned_requests_are_not_allowed():
    with console_client({"facepp": {"credentials": {"k": "s"}}}, allow_unsigned=False) as client:
        by_name = {d["name"]: d for d in client.get("/_cardgate/health").json()["dialects"]}
    assert by_name["facepp"]["auth"] == "token"
    assert by_name["tencent"]["auth"] == "signed"  # no keys and not allowed: every request refused


# --- the console read --------------------------------------------------------------------------------


def read(client, image: bytes, **query):
    response = client.post("/_cardgate/console/read", params={k: "1" for k, v in query.items() if v}, content=image)
    assert response.status_code == 200, response.text
    return response.json()


def real_answer(client, dialect, image: bytes, asks):
    """The same request as the console's, sent to the app over HTTP."""
    req = dialect.console_request(image, asks)
    headers = {k: v for k, v in req.headers if k != "content-length"}
    return client.request(req.method, req.path, params=req.query_string.decode() or None, headers=headers, content=req.body)


@pytest.mark.parametrize("asks", [{}, {"border_cut": True, "card_no": True, "quality": True, "border": True, "copy": True, "reshoot": True}])
def test_every_dialect_answers_in_the_console_as_it_does_over_http(asks):
    from gateway.console.preview import asks_from

    engine = CheckingEngine(make_reading(NUMBER, warnings=["reshoot", "border_incomplete", "photocopy"], quality=77))
    image = fake_card_image(NUMBER)
    with console_client(engine=engine) as client:
        fixed_request_ids(client.app)
        shown = read(client, image, reveal=True, **asks)
        for answer, dialect in zip(shown["dialects"], client.app.state.gateway.dialects, strict=True):
            real = real_answer(client, dialect, image, asks_from({k: "1" for k in asks}))
            assert answer["dialect"] == dialect.name
            assert answer["status"] == real.status_code, dialect.name
            assert comparable(answer["body"]) == comparable(real.text), dialect.name
            assert dict(answer["headers"])["content-type"] == real.headers["content-type"], dialect.name
    assert NUMBER in shown["dialects"][0]["body"]  # Tencent's CardNo, revealed


def test_one_engine_read_per_console_read_with_everything_asked():
    engine = FakeEngine(make_reading(NUMBER))
    with console_client(engine=engine) as client:
        read(client, fake_card_image(NUMBER))
    assert len(engine.calls) == 1
    options = engine.last_options
    assert options.want_border_cut_image and options.check_copy and options.want_quality and options.want_issue_date


def test_a_dialect_that_did_not_ask_for_a_check_does_not_report_its_warning():
    engine = FakeEngine(make_reading(NUMBER, warnings=["reshoot"]))
    with console_client(engine=engine) as client:
        plain = {a["dialect"]: json.loads(a["body"]) for a in read(client, fake_card_image(NUMBER))["dialects"]}
        asked = {a["dialect"]: json.loads(a["body"]) for a in read(client, fake_card_image(NUMBER), reshoot=True)["dialects"]}
    assert plain["tencent"]["Response"]["WarningCode"] == []
    assert asked["tencent"]["Response"]["WarningCode"] == [-9114]


def test_the_number_is_masked_everywhere_unless_revealed():
    with console_client() as client:
        masked = client.post("/_cardgate/console/read", content=fake_card_image(NUMBER)).text
        shown = read(client, fake_card_image(NUMBER))
        revealed = read(client, fake_card_image(NUMBER), reveal=True)
    assert NUMBER not in masked and "6225 7600 8888 8883" not in masked
    assert shown["reading"]["number"] == MASKED and shown["reading"]["masked"] is True
    assert MASKED in shown["dialects"][0]["body"]  # Tencent's CardNo
    assert "6225 76** **** 8883" in next(a["body"] for a in shown["dialects"] if a["dialect"] == "baidu")
    assert revealed["reading"]["number"] == NUMBER and revealed["reading"]["masked"] is False


def test_the_reading_carries_outline_boxes_dates_bank_and_timings():
    with console_client() as client:
        shown = read(client, fake_card_image(NUMBER))
    reading = shown["reading"]
    assert len(reading["card_quad"]) == 4 and len(reading["number_quad"]) == 4
    assert reading["number_box"]["width"] > 0 and reading["expiry"]["text"] == "08/22"
    assert reading["bank"]["bank_name"] == "招商银行" and reading["timings_ms"]
    assert set(shown["stages_ms"]) == {"queue", "engine"}


def test_an_engine_refusal_is_each_dialects_own_error():
    engine = FakeEngine(error=NoCardFoundError("no card"))
    image = fake_card_image(NUMBER)
    with console_client(engine=engine) as client:
        fixed_request_ids(client.app)
        shown = read(client, image)
        assert shown["reading"] is None and shown["error"] == {"type": "NoCardFoundError"}
        for answer, dialect in zip(shown["dialects"], client.app.state.gateway.dialects):
            real = real_answer(client, dialect, image, __import__("engine.types").types.ReadOptions())
            assert (answer["status"], comparable(answer["body"])) == (real.status_code, comparable(real.text)), dialect.name
    tencent = json.loads(shown["dialects"][0]["body"])
    assert tencent["Response"]["Error"]["Code"] == "FailedOperation.NoBankCardError"


def test_a_gif_is_refused_by_the_dialects_that_refuse_gifs():
    with console_client() as client:
        shown = read(client, GIF_BYTES)
    tencent = json.loads(next(a["body"] for a in shown["dialects"] if a["dialect"] == "tencent"))
    assert tencent["Response"]["Error"]["Code"] == "FailedOperation.ImageDecodeFailed"
    alibaba = next(a for a in shown["dialects"] if a["dialect"] == "alibaba")
    assert alibaba["status"] == 415


def test_the_console_read_goes_through_the_engine_queue():
    with console_client() as client:
        async def busy(*args, **kw):
            raise EngineBusyError("full")

        client.app.state.gateway.runner.run = busy
        shown = read(client, fake_card_image(NUMBER))
    tencent = json.loads(shown["dialects"][0]["body"])
    assert tencent["Response"]["Error"]["Code"] == "RequestLimitExceeded"


def test_the_blur_floor_gives_each_dialect_its_blurred_image_error():
    engine = FakeEngine(make_reading(NUMBER, quality=30))
    with console_client({"engine": {"blur_floor": 50}}, engine=engine) as client:
        shown = read(client, fake_card_image(NUMBER))
    tencent = json.loads(shown["dialects"][0]["body"])
    assert tencent["Response"]["Error"]["Code"] == "FailedOperation.OcrFailed"
    assert shown["reading"]["quality"] == 30  # the page still shows what was read


def test_a_draining_gateway_gives_each_dialect_its_retryable_error_and_reads_nothing():
    engine = FakeEngine(make_reading(NUMBER))
    with console_client(engine=engine) as client:
        client.app.state.gateway.begin_drain()
        shown = read(client, fake_card_image(NUMBER))
    assert engine.calls == [] and shown["error"] == {"type": "ShuttingDownError"}
    tencent = json.loads(shown["dialects"][0]["body"])
    assert tencent["Response"]["Error"]["Code"] == "RequestLimitExceeded"


def test_an_empty_or_oversized_body_is_refused():
    with console_client({"tencent": {"enabled": False}, "huawei": {"enabled": False}, "baidu": {"enabled": False},
                         "myqcloud": {"enabled": False}, "hex": {"enabled": False}, "alibaba": {"enabled": False}}) as client:
        assert client.post("/_cardgate/console/read", content=b"").status_code == 400
        limit = max(d.limits.max_image_bytes for d in client.app.state.gateway.dialects)
        assert client.post("/_cardgate/console/read", content=b"\xff" * (limit + 1)).status_code == 413


def test_a_stalled_photo_is_given_up_on_after_the_body_timeout(live_gateway):
    from tests.test_hostile_input import parse_answer, stall_mid_body

    app = create_app({"server": {"body_timeout_s": 0.3}}, FakeEngine())
    raw = stall_mid_body(live_gateway(app), "/_cardgate/console/read", "image/jpeg", wait_s=30)  # generous
    status, _, body = parse_answer(raw)
    assert status == 408 and json.loads(body)["error"] == "body_timeout"


def test_snippets_point_each_sdk_at_this_gateway():
    with console_client() as client:
        snippets = client.get("/_cardgate/console/snippets", headers={"host": "gw.example:9000"}).json()
    assert set(snippets) == {d.name for d in client.app.state.gateway.dialects}
    assert 'endpoint="gw.example:9000"' in snippets["tencent"]
    assert "http://gw.example:9000" in snippets["huawei"]
    assert all(snippets.values())


# --- the root: browsers to the console, Tencent as before ----------------------------------------------


def test_a_browser_at_the_root_is_sent_to_the_console_and_tencent_still_answers():
    with console_client() as client:
        browser = client.get("/", headers={"accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
        assert browser.status_code == 303 and browser.headers["location"] == "/console/"
        tencent = client.get("/?Action=BankCardOCR&Version=2018-11-19", headers={"accept": "text/html"})
        assert "Response" in tencent.json()
        assert "Response" in client.get("/").json()  # no Accept: text/html, Tencent's MissingParameter


def test_no_redirect_when_the_console_is_off():
    with console_client(loopback=False) as client:
        assert "Response" in client.get("/", headers={"accept": "text/html"}).json()


# --- access ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table, loopback, on", [
    ({}, True, True),
    ({}, False, False),
    ({"enabled": True}, False, False),  # no password or token: not on the network
    ({"enabled": True, "password": "pw"}, False, True),
    ({"enabled": True, "token": "tk"}, False, True),
    ({"enabled": False}, True, False),
    ({"password": "pw"}, False, False),  # a password alone does not switch it on off loopback
])
def test_the_console_is_on_by_default_only_on_loopback(table, loopback, on):
    assert access.decide(Console(**table), loopback).on is on


def test_off_when_bound_to_a_non_loopback_address_without_credentials():
    with console_client(loopback=False) as client:
        assert client.get("/console/").status_code == 404
        assert client.get("/_cardgate/health").status_code == 404
        assert client.post("/_cardgate/console/read", content=fake_card_image(NUMBER)).status_code == 404


def basic(password: str, user: str = "me") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_wrong_password_is_refused_and_the_right_one_or_token_taken():
    config = {"console": {"enabled": True, "password": "s3cret", "token": "tok-1"}}
    with console_client(config, loopback=False) as client:
        none = client.get("/_cardgate/health")
        assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Basic")
        assert client.get("/_cardgate/health", headers=basic("wrong")).status_code == 401
        assert client.get("/_cardgate/health", headers=basic("s3cre")).status_code == 401
        assert client.get("/_cardgate/health", headers={"authorization": "Bearer tok-2"}).status_code == 401
        assert client.post("/_cardgate/console/read", headers=basic("wrong"), content=fake_card_image(NUMBER)).status_code == 401
        assert client.get("/_cardgate/health", headers=basic("s3cret")).status_code == 200
        assert client.get("/_cardgate/health", headers={"authorization": "Bearer tok-1"}).status_code == 200


def test_secrets_are_compared_in_constant_time(monkeypatch):
    seen = []
    real = access.hmac.compare_digest
    monkeypatch.setattr(access.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    guard = access.Guard(Console(enabled=True, password="pw", token="tk"))

    class Req:
        headers = {"authorization": "Bearer nope"}

    assert not guard.authorized(Req())
    assert seen == [(b"nope", b"pw"), (b"nope", b"tk")]


def test_console_requests_are_rate_limited():
    now = [1000.0]
    config = {"console": {"per_second": 1.0, "burst": 2}}
    with TestClient(create_app(config, FakeEngine(make_reading(NUMBER)), clock=lambda: now[0])) as client:
        statuses = [client.get("/_cardgate/health").status_code for _ in range(3)]
        now[0] += 1.0
        later = client.get("/_cardgate/health").status_code
    assert statuses == [200, 200, 429] and later == 200


def test_no_image_bytes_or_full_number_in_the_logs(caplog):
    image = fake_card_image(NUMBER, padding=64)
    with caplog.at_level(logging.DEBUG):
        with console_client() as client:
            read(client, image, reveal=True, border_cut=True)
            read(client, image)
    lines = [record.getMessage() + " " + json.dumps(getattr(record, "fields", {}), default=str) for record in caplog.records]
    text = "\n".join(lines)
    assert any('"dialect": "console"' in line and "/_cardgate/console/read" in line for line in lines)
    for needle in (NUMBER, "6225 7600 8888 8883", base64.b64encode(image).decode()[:40], "CARD:"):
        assert needle not in text


# --- with the real engine ------------------------------------------------------------------------------


def synthetic_photo(number: str, seed: int = 7) -> bytes:
    import cv2
    import numpy as np

    from engine.synth.card import render_card
    from engine.synth.scene import photo_of_card

    rng = np.random.default_rng(seed)
    card = render_card(rng, number=number, layout="4444")
    img, _ = photo_of_card(card.image, rng, size=(900, 700), angle=8, scale=0.8)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


@pytest.fixture(scope="module")
def real_engine():
    from engine.pipeline import WEIGHTS_DIR

    if not all((Path(WEIGHTS_DIR) / f).exists() for f in ("detector.pt", "locator.pt", "textrec.pt")):
        pytest.skip("engine weights not built")
    from engine import Engine

    return Engine.load()


def test_with_the_real_engine_one_read_with_everything_on_answers_as_each_dialects_own_read(real_engine):
    """The console reads once with every check on and hands each dialect the reading as its own
    options would have had it: for a synthetic card that must be what a real request answers."""
    from gateway.console.preview import asks_from

    image = synthetic_photo("6225760088888883")
    with console_client(engine=real_engine) as client:
        fixed_request_ids(client.app)
        for query in ({}, {"quality": "1", "reshoot": "1", "copy": "1", "border": "1"}):
            shown = read(client, image, reveal=True, **{k: True for k in query})
            for answer, dialect in zip(shown["dialects"], client.app.state.gateway.dialects, strict=True):
                real = real_answer(client, dialect, image, asks_from(query))
                assert (answer["status"], comparable(answer["body"])) == (real.status_code, comparable(real.text)), dialect.name
    assert shown["reading"] is not None, "the synthetic card should be read"


# --- the page ----------------------------------------------------------------------------------------------


def test_the_page_and_its_files_are_served_with_a_strict_policy():
    import re

    from gateway.console import STATIC

    with console_client() as client:
        page = client.get("/console/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        linked = set(re.findall(r'(?:href|src)="([a-z]+\.(?:css|js|html))"', page.text))
        assert linked >= {"console.css", "console.js", "report.html"}
        for name in linked | set(STATIC):
            response = client.get(f"/console/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-type"] == STATIC[name], name
        assert client.get("/console/../config.py").status_code == 404
        assert client.get("/console/app.py").status_code == 404
        assert client.get("/console", follow_redirects=False).headers["location"] == "/console/"


def test_the_page_has_no_inline_script_or_style_and_nothing_from_elsewhere():
    from gateway.console import STATIC, static_file

    for name in STATIC:
        text = static_file(name).decode()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, name
        if name.endswith(".html"):
            assert "<script>" not in text and "style=" not in text and "<style" not in text, name
            assert 'type="module"' in text, name


def test_the_package_ships_the_page():
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "console/static/*" in data["tool"]["setuptools"]["package-data"]["gateway"]
