"""Shadow mode: the "vendor" is a second gateway (FakeEngine) holding its own keys, served on 127.0.0.1.

Every mirrored or proxied request must pass the vendor's signature check with
the upstream credentials of [<dialect>.shadow], so a wrong re-signing shows up
as the vendor's auth error.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import ConfigError
from gateway.migrate.records import load_records
from core.wire import mask
from tests.fakes import FakeEngine, fake_card_image, make_reading
from tests.test_migrate_support import (
    DIALECTS,
    LOCAL_NUMBER,
    UPSTREAM_NUMBER,
    client_request,
    closed_port_url,
    read_answer,
    read_jsonl,
    wait_for,
)

IMAGE = fake_card_image(LOCAL_NUMBER)


def vendor_app(dialect: str, engine: FakeEngine):
    return create_app({dialect: DIALECTS[dialect]["vendor"]}, engine, allow_unsigned=False)


@contextlib.contextmanager
def shadowed_gateway(tmp_path, dialect: str, upstream: str, local_engine: FakeEngine, shadow: dict | None = None, **options):
    """A TestClient on a gateway shadowing `dialect` to `upstream`; yields (client, gateway, records path)."""
    records = options.pop("records", str(tmp_path / "shadow.jsonl"))
    table = {"upstream": upstream, "timeout_s": 3.0, **DIALECTS[dialect]["shadow"], **(shadow or {})}
    config = {
        dialect: {**DIALECTS[dialect]["gateway"], "shadow": table},
        "shadow": {"records": records, "queue_size": 8, "workers": 2, **options},
    }
    app = create_app(config, local_engine, allow_unsigned=False)
    with TestClient(app) as client:
        yield client, app.state.gateway, records


def counters(gateway) -> dict:
    return gateway.shadow.counters.snapshot()


# --- agreement and disagreement, every dialect, both answering sides -------------------


@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("answer", ["local", "upstream"])
def test_agreement_every_dialect(tmp_path, live_gateway, dialect, answer):
    vendor_engine = FakeEngine(make_reading(LOCAL_NUMBER))
    upstream = live_gateway(vendor_app(dialect, vendor_engine))
    local_engine = FakeEngine(make_reading(LOCAL_NUMBER))
    with shadowed_gateway(tmp_path, dialect, upstream, local_engine, {"answer": answer}) as (client, gateway, path):
        response = client_request(client, dialect, IMAGE)
        assert read_answer(dialect, response).number == LOCAL_NUMBER
        records = wait_for(lambda: read_jsonl(path))
    assert len(records) == 1, records
    record = records[0]
    # Both sides read the image: the vendor accepted the re-signed request.
    assert len(vendor_engine.calls) == 1 and len(local_engine.calls) == 1
    assert vendor_engine.images[0] == IMAGE
    assert record["agree"] is True, record
    assert record["answered_by"] == answer
    assert record["fields"]["number"] is True and record["fields"]["error_code"] is True
    assert record["sides"]["upstream"]["number"] == mask(LOCAL_NUMBER)
    assert record["sides"]["upstream"]["error_code"] is None
    snap = counters(gateway)
    assert snap["comparisons"] == {dialect: 1}
    assert snap["fields"][(dialect, "number", "agree")] == 1
    assert not snap["drops"] and not snap["upstream_errors"]


@pytest.mark.parametrize("dialect", ["tencent", "huawei", "myqcloud", "facepp", "hex"])
def test_disagreement_is_recorded_per_field(tmp_path, live_gateway, dialect):
    upstream = live_gateway(vendor_app(dialect, FakeEngine(make_reading(UPSTREAM_NUMBER, expiry="09/27"))))
    local_engine = FakeEngine(make_reading(LOCAL_NUMBER, expiry="08/22"))
    with shadowed_gateway(tmp_path, dialect, upstream, local_engine, {"answer": "local"}) as (client, gateway, path):
        response = client_request(client, dialect, IMAGE)
        assert read_answer(dialect, response).number == LOCAL_NUMBER  # the local side answered
        records = wait_for(lambda: read_jsonl(path))
        metrics = client.get("/metrics").text
    record = records[0]
    assert record["agree"] is False
    assert record["fields"]["number"] is False
    if dialect != "facepp":  # Face++ carries no expiry
        assert record["fields"]["expiry"] is False
    assert record["sides"]["local"]["number"] == mask(LOCAL_NUMBER)
    assert record["sides"]["upstream"]["number"] == mask(UPSTREAM_NUMBER)
    assert counters(gateway)["fields"][(dialect, "number", "disagree")] == 1
    assert f'cardgate_shadow_field_total{{dialect="{dialect}",field="number",result="disagree"}} 1' in metrics


def test_answer_upstream_relays_the_vendor_answer_exactly(tmp_path, live_gateway):
    upstream = live_gateway(vendor_app("tencent", FakeEngine(make_reading(UPSTREAM_NUMBER))))
    local_engine = FakeEngine(make_reading(LOCAL_NUMBER))
    with shadowed_gateway(tmp_path, "tencent", upstream, local_engine, {"answer": "upstream"}) as (client, gateway, path):
        response = client_request(client, "tencent", IMAGE)
        records = wait_for(lambda: read_jsonl(path))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"  # exactly: the SDK needs it
    assert read_answer("tencent", response).number == UPSTREAM_NUMBER
    assert records[0]["answered_by"] == "upstream"
    assert records[0]["sides"]["local"]["number"] == mask(LOCAL_NUMBER)  # the engine was the mirror
    assert len(local_engine.calls) == 1


def test_answer_upstream_relays_vendor_errors_with_their_status(tmp_path, live_gateway):
    from engine.errors import NoCardFoundError

    upstream = live_gateway(vendor_app("huawei", FakeEngine(error=NoCardFoundError())))
    with shadowed_gateway(tmp_path, "huawei", upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "upstream"}) as (
        client, gateway, path,
    ):
        response = client_request(client, "huawei", IMAGE)
        records = wait_for(lambda: read_jsonl(path))
    assert response.status_code == 400
    assert response.json()["error_code"] == "AIS.0104"
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert "x-request-id" in response.headers
    assert records[0]["fields"]["error_code"] is False
    assert records[0]["sides"]["upstream"]["error_code"] == "AIS.0104"


# --- the mirrored request is re-signed: wrong upstream keys are the vendor's auth error ------


@pytest.mark.parametrize(
    "dialect, bad, code",
    [
        ("tencent", {"secret_key": "wrong"}, "AuthFailure.SignatureFailure"),
        ("huawei", {"secret_key": "wrong"}, "APIG.0301"),
        ("myqcloud", {"secret_key": "wrong"}, "5"),
        ("facepp", {"api_secret": "wrong"}, "AUTHENTICATION_ERROR"),
        ("hex", {"token": "wrong"}, "-1"),
    ],
)
def test_vendor_refuses_badly_signed_mirror(tmp_path, live_gateway, dialect, bad, code):
    vendor_engine = FakeEngine(make_reading(LOCAL_NUMBER))
    upstream = live_gateway(vendor_app(dialect, vendor_engine))
    with shadowed_gateway(tmp_path, dialect, upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "local", **bad}) as (
        client, gateway, path,
    ):
        assert read_answer(dialect, client_request(client, dialect, IMAGE)).number == LOCAL_NUMBER
        records = wait_for(lambda: read_jsonl(path))
    assert vendor_engine.calls == []
    assert records[0]["sides"]["upstream"]["error_code"] == code
    assert records[0]["fields"]["error_code"] is False


def test_tencent_get_and_legacy_requests_are_mirrored_as_tc3(tmp_path, live_gateway):
    """A client using the legacy HmacSHA256 form signature: the mirror is re-signed in TC3."""
    import base64

    from adapters.tencent import legacy_signature, legacy_string_to_sign

    vendor_engine = FakeEngine(make_reading(LOCAL_NUMBER))
    upstream = live_gateway(vendor_app("tencent", vendor_engine))
    with shadowed_gateway(tmp_path, "tencent", upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "local"}) as (
        client, gateway, path,
    ):
        params = {
            "Action": "BankCardOCR", "Version": "2018-11-19", "SecretId": "AKIDCLIENT", "Timestamp": str(int(time.time())),
            "Nonce": "1234", "SignatureMethod": "HmacSHA256", "ImageBase64": base64.b64encode(IMAGE).decode(),
            "EnableCopyCheck": "True",
        }
        params["Signature"] = legacy_signature(
            "client-secret", legacy_string_to_sign("POST", "testserver", "/", params), "HmacSHA256"
        )
        from urllib.parse import urlencode

        response = client.post("/", content=urlencode(params), headers={"content-type": "application/x-www-form-urlencoded"})
        assert read_answer("tencent", response).number == LOCAL_NUMBER
        records = wait_for(lambda: read_jsonl(path))
    assert records[0]["agree"] is True
    assert vendor_engine.last_options.check_copy is True  # the option travelled with the mirror


def test_myqcloud_multipart_upload_is_mirrored(tmp_path, live_gateway):
    from adapters.migrate.myqcloud import multi_use_sign

    vendor_engine = FakeEngine(make_reading(LOCAL_NUMBER))
    upstream = live_gateway(vendor_app("myqcloud", vendor_engine))
    with shadowed_gateway(tmp_path, "myqcloud", upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "upstream"}) as (
        client, gateway, path,
    ):
        sign = multi_use_sign("1250000001", "", "AKIDMYQC", "client-myq", time.time())
        response = client.post(
            "/ocr/bankcard", headers={"authorization": sign}, data={"appid": "1250000001"}, files={"image": ("c.jpg", IMAGE)}
        )
        assert response.json()["code"] == 0, response.json()
        records = wait_for(lambda: read_jsonl(path))
    assert vendor_engine.images == [IMAGE]
    assert records[0]["agree"] is True


# --- failures on either side never break or delay the answering side -----------------------


def test_slow_upstream_does_not_delay_the_local_answer(tmp_path, live_gateway):
    upstream = live_gateway(vendor_app("tencent", FakeEngine(make_reading(LOCAL_NUMBER), delay_s=1.5)))
    with shadowed_gateway(
        tmp_path, "tencent", upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "local", "timeout_s": 0.3}
    ) as (client, gateway, path):
        started = time.monotonic()
        response = client_request(client, "tencent", IMAGE)
        assert time.monotonic() - started < 0.3
        assert read_answer("tencent", response).number == LOCAL_NUMBER
        records = wait_for(lambda: read_jsonl(path))
        metrics = client.get("/metrics").text
    upstream_side = records[0]["sides"]["upstream"]
    assert upstream_side["failure"] == "timeout" and upstream_side["status"] is None
    assert records[0]["agree"] is None and set(records[0]["fields"].values()) == {None}
    assert counters(gateway)["upstream_errors"] == {("tencent", "timeout"): 1}
    assert 'cardgate_shadow_upstream_errors_total{dialect="tencent",reason="timeout"} 1' in metrics


def test_slow_local_engine_does_not_delay_the_upstream_answer(tmp_path, live_gateway):
    upstream = live_gateway(vendor_app("hex", FakeEngine(make_reading(UPSTREAM_NUMBER))))
    local_engine = FakeEngine(make_reading(LOCAL_NUMBER), delay_s=1.0)
    with shadowed_gateway(tmp_path, "hex", upstream, local_engine, {"answer": "upstream"}) as (client, gateway, path):
        started = time.monotonic()
        response = client_request(client, "hex", IMAGE)
        assert time.monotonic() - started < 0.6
        assert read_answer("hex", response).number == UPSTREAM_NUMBER
        records = wait_for(lambda: read_jsonl(path), timeout=5)
    assert records[0]["sides"]["local"]["number"] == mask(LOCAL_NUMBER)
    assert records[0]["sides"]["local"]["latency_ms"] >= 900


def test_unreachable_upstream_falls_back_to_local(tmp_path):
    with shadowed_gateway(
        tmp_path, "tencent", closed_port_url(), FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "upstream"}
    ) as (client, gateway, path):
        response = client_request(client, "tencent", IMAGE)
        assert read_answer("tencent", response).number == LOCAL_NUMBER
        records = wait_for(lambda: read_jsonl(path))
    assert records[0]["answered_by"] == "local (upstream failed)"
    assert records[0]["sides"]["upstream"]["failure"] == "connect"
    snap = counters(gateway)
    assert snap["fallbacks"] == {"tencent": 1}
    assert snap["upstream_errors"] == {("tencent", "connect"): 1}


def test_unreachable_upstream_with_on_failure_error_answers_the_vendor_error(tmp_path):
    engine = FakeEngine(make_reading(LOCAL_NUMBER))
    shadow = {"answer": "upstream", "on_upstream_failure": "error"}
    with shadowed_gateway(tmp_path, "tencent", closed_port_url(), engine, shadow) as (client, gateway, path):
        response = client_request(client, "tencent", IMAGE)
    assert response.status_code == 200
    assert response.json()["Response"]["Error"]["Code"] == "InternalError"
    assert engine.calls == []


def test_upstream_answer_not_in_its_dialect_counts_as_an_upstream_error(tmp_path, live_gateway):
    async def broken(request):
        return PlainTextResponse("<html>bad gateway</html>", status_code=502)

    upstream = live_gateway(Starlette(routes=[Route("/{path:path}", broken, methods=["GET", "POST"])]))
    for answer in ("local", "upstream"):
        records_path = str(tmp_path / f"{answer}.jsonl")
        with shadowed_gateway(
            tmp_path, "tencent", upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": answer}, records=records_path
        ) as (client, gateway, path):
            response = client_request(client, "tencent", IMAGE)
            assert read_answer("tencent", response).number == LOCAL_NUMBER  # never the 502 page
            records = wait_for(lambda: read_jsonl(path))
        assert records[0]["sides"]["upstream"]["status"] == 502
        assert records[0]["sides"]["upstream"]["failure"].startswith("unreadable")
        assert counters(gateway)["upstream_errors"] == {("tencent", "unreadable"): 1}


def test_mirror_queue_overflow_drops_and_counts(tmp_path, live_gateway):
    upstream = live_gateway(vendor_app("tencent", FakeEngine(make_reading(LOCAL_NUMBER), delay_s=0.5)))
    with shadowed_gateway(
        tmp_path, "tencent", upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "local"}, queue_size=1, workers=1
    ) as (client, gateway, path):
        for _ in range(5):
            assert read_answer("tencent", client_request(client, "tencent", IMAGE)).number == LOCAL_NUMBER
        drops = counters(gateway)["drops"].get("tencent", 0)
        assert drops >= 2  # one running, one waiting: the rest of a burst is dropped
        records = wait_for(lambda: len(read_jsonl(path)) >= 5 - drops and read_jsonl(path))
        metrics = client.get("/metrics").text
    assert len(records) == 5 - drops
    assert f'cardgate_shadow_mirror_drops_total{{dialect="tencent"}} {drops}' in metrics


def test_unauthenticated_requests_are_neither_proxied_nor_mirrored(tmp_path, live_gateway):
    vendor_engine = FakeEngine(make_reading(LOCAL_NUMBER))
    upstream = live_gateway(vendor_app("tencent", vendor_engine))
    for answer in ("local", "upstream"):
        with shadowed_gateway(tmp_path, "tencent", upstream, FakeEngine(), {"answer": answer}) as (client, gateway, path):
            wrong = {"secret_id": "AKIDCLIENT", "secret_key": "not-the-secret"}
            response = client_request(client, "tencent", IMAGE, settings=wrong)
            assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
            time.sleep(0.2)
            assert read_jsonl(path) == []
    assert vendor_engine.calls == []


# --- records -------------------------------------------------------------------------------


def test_no_full_card_number_in_records_or_logs(tmp_path, live_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    upstream = live_gateway(vendor_app("tencent", FakeEngine(make_reading(UPSTREAM_NUMBER))))
    with shadowed_gateway(tmp_path, "tencent", upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "upstream"}) as (
        client, gateway, path,
    ):
        client_request(client, "tencent", IMAGE)
        records = wait_for(lambda: read_jsonl(path))
    text = open(path, encoding="utf-8").read()
    assert records and "sides differ on number" in caplog.text
    for number in (LOCAL_NUMBER, UPSTREAM_NUMBER):
        assert number not in text
        assert number not in caplog.text
    assert mask(LOCAL_NUMBER) in text and mask(UPSTREAM_NUMBER) in text
    assert "image" not in records[0]  # no image kept unless configured
    assert not list(tmp_path.glob("*.jpg"))


def test_sqlite_records_and_kept_images(tmp_path, live_gateway):
    upstream = live_gateway(vendor_app("huawei", FakeEngine(make_reading(LOCAL_NUMBER))))
    db = str(tmp_path / "shadow.sqlite")
    images = tmp_path / "images"
    with shadowed_gateway(
        tmp_path, "huawei", upstream, FakeEngine(make_reading(LOCAL_NUMBER)), {"answer": "local"},
        records=db, images_dir=str(images),
    ) as (client, gateway, path):
        client_request(client, "huawei", IMAGE)
        client_request(client, "huawei", IMAGE)
        records = wait_for(lambda: len(load_records(db)) == 2 and load_records(db))
    assert [r["agree"] for r in records] == [True, True]
    kept = sorted(p.name for p in images.iterdir())
    assert kept == sorted(r["image"] for r in records)
    assert (images / records[0]["image"]).read_bytes() == IMAGE


@pytest.mark.parametrize(
    "table, message",
    [
        ({"answer": "local"}, "upstream"),
        ({"upstream": "ftp://x", "secret_id": "a", "secret_key": "b"}, "upstream"),
        ({"upstream": "https://ocr.tencentcloudapi.com", "secret_id": "a"}, "secret_key"),
        ({"upstream": "https://ocr.tencentcloudapi.com", "secret_id": "a", "secret_key": "b", "answer": "both"}, "answer"),
    ],
)
def test_shadow_config_is_checked(table, message):
    with pytest.raises(ConfigError, match=message):
        create_app({"tencent": {"shadow": table}}, FakeEngine())


def test_no_shadow_table_means_no_shadow(client):
    assert client.app.state.gateway.shadow is None
    assert "cardgate_shadow_" not in client.get("/metrics").text
