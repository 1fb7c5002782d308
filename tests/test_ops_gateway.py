"""Operating the gateway: /metrics, backpressure per dialect, per-credential rate limits,
graceful shutdown, the streaming body limit and what reaches the logs, over the real dialects."""
from __future__ import annotations

import asyncio
import base64
import re
import logging
import threading
import time

import httpx
import pytest
from starlette.testclient import TestClient

from bench.clients import BUSY_CODES, DIALECTS, Credentials, build_request, outcome
from gateway.app import create_app
from gateway.config import ConfigError, with_defaults
from gateway.logs import JsonFormatter
from gateway.metrics import parse_text
from gateway.ratelimit import RateLimiter, TokenBucket
from tests.fakes import FakeEngine as _FakeEngine
from tests.fakes import make_reading
from tests.test_huawei_support import photo

CARD = photo(480, 300)  # a real JPEG every dialect accepts (Face++ wants sides >= 100)
NUMBER = "6217000010030385457"  # passes Luhn: Tencent and myqcloud refuse numbers that do not


class FakeEngine(_FakeEngine):
    def __init__(self, **kwargs):
        super().__init__(make_reading(NUMBER), **kwargs)


class GatedEngine(FakeEngine):
    """FakeEngine whose reads wait until `release()`: a saturated engine without sleeps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def read(self, image, options):
        self.entered.release()
        if not self.gate.wait(10):
            raise RuntimeError("gate never opened")
        return super().read(image, options)

    def release(self) -> None:
        self.gate.set()


def send(base_url: str, dialect: str, creds: Credentials | None = None, now: float | None = None) -> httpx.Response:
    host = base_url.split("://", 1)[1]
    method, path, headers, body = build_request(dialect, CARD, creds or Credentials(), host, now)
    return httpx.request(method, base_url + path, headers=headers, content=body, timeout=10)


def code_of(dialect: str, response: httpx.Response) -> str:
    return outcome(dialect, response.status_code, response.content)[1]


def samples(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_text(response.text)


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


# --- /metrics -----------------------------------------------------------------------------------


def test_metrics_count_requests_by_dialect_status_and_vendor_code():
    client = TestClient(create_app({"engine": {"threads": 2, "queue_size": 3}}, FakeEngine()))
    host = "testserver"
    for dialect in DIALECTS:
        method, path, headers, body = build_request(dialect, CARD, Credentials(), host)
        assert outcome(dialect, *_answer(client.request(method, path, headers=headers, content=body)))[0]
    # a Huawei request without an image, a Tencent one with bad base64
    client.post("/v2/p/ocr/bankcard", json={})
    client.post("/", json={"ImageBase64": "@@"}, headers={"X-TC-Action": "BankCardOCR", "X-TC-Version": "2018-11-19"})

    metrics = samples(client)
    for dialect in DIALECTS:
        assert value(metrics, "cardgate_requests_total", dialect=dialect, status="200", code="ok") == 1
        assert value(metrics, "cardgate_request_duration_seconds_count", dialect=dialect) >= 1
        assert value(metrics, "cardgate_overhead_seconds_count", dialect=dialect) == 1
    huawei_errors = [k for k in metrics if k[0] == "cardgate_requests_total" and ("dialect", "huawei") in k[1]
                     and ("status", "400") in k[1]]
    assert len(huawei_errors) == 1 and dict(huawei_errors[0][1])["code"].startswith("AIS.")
    tencent_errors = [dict(k[1])["code"] for k in metrics if k[0] == "cardgate_requests_total"
                      and ("dialect", "tencent") in k[1] and ("code", "ok") not in k[1]]
    assert tencent_errors and tencent_errors[0].startswith("InvalidParameter")
    # per-stage latency: the gateway's own stages and the engine's (FakeEngine reports detect/rectify/recognize)
    for stage in ("queue", "engine", "render", "detect", "recognize"):
        assert value(metrics, "cardgate_stage_duration_seconds_count", stage=stage) == len(DIALECTS), stage
    assert value(metrics, "cardgate_stage_duration_seconds_bucket", stage="engine", le="+Inf") == len(DIALECTS)
    assert value(metrics, "cardgate_engine_capacity", kind="threads") == 2
    assert value(metrics, "cardgate_engine_capacity", kind="queue") == 3
    assert value(metrics, "cardgate_engine_running") == 0 and value(metrics, "cardgate_engine_queued") == 0
    assert value(metrics, "process_resident_memory_bytes") > 10_000_000
    assert value(metrics, "process_peak_resident_memory_bytes") >= value(metrics, "process_resident_memory_bytes") * 0.5


def _answer(response):
    return response.status_code, response.content


def test_metrics_show_running_and_queued_engine_work(live_gateway):
    engine = GatedEngine()
    app = create_app({"engine": {"threads": 1, "queue_size": 2}}, engine)
    url = live_gateway(app)
    with httpx.Client(base_url=url, timeout=10) as client, _in_background(lambda: send(url, "hex"), 3) as pending:
        assert engine.entered.acquire(timeout=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            metrics = parse_text(client.get("/metrics").text)
            if value(metrics, "cardgate_engine_queued") == 2:
                break
            time.sleep(0.02)
        assert value(metrics, "cardgate_engine_running") == 1
        assert value(metrics, "cardgate_engine_queued") == 2
        assert value(metrics, "cardgate_http_in_flight") == 3
        engine.release()
        assert [r.json()["errorcode"] for r in pending()] == [0, 0, 0]


def test_metrics_can_be_turned_off_and_server_timing_on():
    client = TestClient(create_app({"metrics": {"enabled": False, "server_timing": True}}, FakeEngine()))
    assert client.get("/metrics").status_code == 404
    r = client.post("/hex/ocrapi/creditcardocr", json={"image": base64.b64encode(CARD).decode()})
    timing = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))
    assert set(timing) == {"queue", "engine", "render", "app"}
    assert float(timing["app"]) >= float(timing["engine"])


# --- backpressure ----------------------------------------------------------------------------------


class _in_background:
    """Run `fn` `n` times in threads; calling the context value waits for and returns the results."""

    def __init__(self, fn, n: int):
        self.results: list = [None] * n
        self.threads = [threading.Thread(target=self._run, args=(fn, i), daemon=True) for i in range(n)]

    def _run(self, fn, i):
        self.results[i] = fn()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self.wait

    def wait(self):
        for thread in self.threads:
            thread.join(15)
        return self.results

    def __exit__(self, *exc):
        return False


def test_saturated_engine_answers_each_vendors_rate_limit_error_at_once(live_gateway):
    engine = GatedEngine()
    app = create_app({"engine": {"threads": 1, "queue_size": 0}}, engine)
    url = live_gateway(app)
    with _in_background(lambda: send(url, "hex"), 1) as occupying:
        assert engine.entered.acquire(timeout=5)
        for dialect in DIALECTS:
            started = time.monotonic()
            response = send(url, dialect)
            assert time.monotonic() - started < 2.0  # refused at once, not queued
            assert code_of(dialect, response) in BUSY_CODES[dialect], (dialect, response.text)
        expected_status = {"huawei": 429, "facepp": 403}
        assert send(url, "huawei").status_code == expected_status["huawei"]
        assert send(url, "facepp").status_code == expected_status["facepp"]
        engine.release()
        assert occupying()[0].json()["errorcode"] == 0
    assert outcome("tencent", *_answer(send(url, "tencent")))[0]  # free again
    assert len(engine.calls) == 2


# --- per-credential rate limits ---------------------------------------------------------------------

SIGNED = {
    "tencent": {"credentials": {"AKIDBENCH": "tencent-secret"}},
    "huawei": {"credentials": {"HWAKBENCH": "huawei-secret"}},
    "facepp": {"credentials": {"fpp-key": "fpp-secret", "fpp-other": "other-secret"}},
    "myqcloud": {"apps": {"1250000000": {"secret_id": "AKIDMYQ", "secret_key": "myq-secret"}}},
    "hex": {"token": "hex-token"},
    "baidu": {"apps": {"12345678": {"access_key": "baidu-ak", "secret_access_key": "baidu-sk"}}},
    "alibaba": {"credentials": {"LTAIBENCH": "alibaba-secret"}},
}


def test_per_credential_rate_limit_answers_each_vendors_throttling_error(live_gateway):
    now = [1_700_000_000.0]
    config = {**SIGNED, "rate_limits": {"per_second": 1.0, "burst": 2}}
    app = create_app(config, FakeEngine(), clock=lambda: now[0], allow_unsigned=False)
    url = live_gateway(app)
    creds = Credentials.from_config(with_defaults(SIGNED))
    throttled = {"tencent": "RequestLimitExceeded", "huawei": "APIG.0308", "facepp": "CONCURRENCY_LIMIT_EXCEEDED",
                 "myqcloud": "15", "hex": "-5208", "baidu": "18", "alibaba": "Throttling.User"}
    for dialect in DIALECTS:
        first, second, third = (send(url, dialect, creds, now[0]) for _ in range(3))
        assert outcome(dialect, *_answer(first))[0] and outcome(dialect, *_answer(second))[0], dialect
        assert code_of(dialect, third) == throttled[dialect], (dialect, third.text)
    assert send(url, "huawei", creds, now[0]).status_code == 429
    now[0] += 1.0  # one more token for every credential
    for dialect in DIALECTS:
        assert outcome(dialect, *_answer(send(url, dialect, creds, now[0])))[0], dialect
    # another Face++ key has its own bucket
    other = Credentials(facepp=("fpp-other", "other-secret"))
    assert outcome("facepp", *_answer(send(url, "facepp", other, now[0])))[0]


def test_per_credential_overrides_and_unlimited_keys():
    now = [100.0]
    limiter = RateLimiter({"per_second": 0, "burst": 0, "credentials": {"slow": 0.5, "free": 0}}, lambda: now[0])
    limiter.check("hex", None)  # unsigned requests are not limited
    for _ in range(50):
        limiter.check("hex", "free")
        limiter.check("hex", "anyone")  # no default rate
    limiter.check("hex", "slow")
    from core.errors import RateLimitedError

    with pytest.raises(RateLimitedError):
        limiter.check("hex", "slow")
    limiter.check("tencent", "slow")  # buckets are per dialect
    now[0] += 2.0
    limiter.check("hex", "slow")


def test_token_bucket_refills_at_its_rate_and_ignores_clock_steps_back():
    bucket = TokenBucket(rate=2.0, burst=2.0, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert not bucket.take(-100.0)  # a clock stepping back mints nothing
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert bucket.take(10.0) and bucket.take(10.0) and not bucket.take(10.0)  # capped at burst


@pytest.mark.parametrize(
    "table, key",
    [
        ({"per_second": -1}, "[rate_limits] per_second"),
        ({"per_second": True}, "[rate_limits] per_second"),
        ({"burst": 1.5}, "[rate_limits] burst"),
        ({"credentials": {"AKID": "fast"}}, "[rate_limits.credentials] AKID"),
    ],
)
def test_rate_limit_config_errors_name_the_key(table, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        with_defaults({"rate_limits": table})


# --- graceful shutdown ----------------------------------------------------------------------------

DRAINING = {"tencent": "RequestLimitExceeded", "huawei": "ModelArts.4403", "facepp": "INTERNAL_ERROR",
            "myqcloud": "202", "hex": "-5208", "baidu": "2", "alibaba": "ServiceUnavailable"}


def test_drain_finishes_in_flight_requests_and_refuses_new_ones(live_gateway):
    engine = GatedEngine()
    app = create_app({"engine": {"threads": 2, "queue_size": 2}}, engine)
    gateway = app.state.gateway
    url = live_gateway(app)
    with _in_background(lambda: send(url, "huawei"), 2) as in_flight:
        assert engine.entered.acquire(timeout=5) and engine.entered.acquire(timeout=5)
        gateway.begin_drain()
        assert httpx.get(url + "/readyz").status_code == 503
        assert httpx.get(url + "/healthz").status_code == 200
        for dialect in DIALECTS:
            started = time.monotonic()
            response = send(url, dialect)
            assert time.monotonic() - started < 2.0
            assert code_of(dialect, response) == DRAINING[dialect], (dialect, response.text)
        engine.release()
        assert [r.status_code for r in in_flight()] == [200, 200]
    assert len(engine.calls) == 2  # refused requests never reached the engine


def test_drain_waits_for_in_flight_then_reports_idle():
    engine = GatedEngine()
    app = create_app({}, engine)
    gateway = app.state.gateway

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            method, path, headers, body = build_request("hex", CARD, Credentials(), "gw")
            request = asyncio.create_task(client.request(method, path, headers=headers, content=body))
            while gateway.metrics.in_flight == 0:
                await asyncio.sleep(0.01)
            assert await gateway.drain(0.05) is False  # timed out: one still running
            threading.Timer(0.1, engine.release).start()
            assert await gateway.drain(5) is True
            return await request

    assert asyncio.run(go()).json()["errorcode"] == 0


def test_serve_until_stop_drains_before_the_server_exits():
    from hypercorn.config import Config

    from gateway.cli import serve_until

    engine = GatedEngine()
    app = create_app({}, engine)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    loop_box: dict = {}

    def run():
        async def main():
            loop_box["loop"] = asyncio.get_running_loop()
            loop_box["stop"] = asyncio.Event()
            await serve_until(app, config, loop_box["stop"], drain_timeout=5)

        asyncio.run(main())

    server = threading.Thread(target=run, daemon=True)
    server.start()
    _wait_until_serving(url)
    with _in_background(lambda: send(url, "hex"), 1) as in_flight:
        assert engine.entered.acquire(timeout=5)
        loop_box["loop"].call_soon_threadsafe(loop_box["stop"].set)
        deadline = time.monotonic() + 5
        while not app.state.gateway.draining and time.monotonic() < deadline:
            time.sleep(0.01)
        assert code_of("hex", send(url, "hex")) == "-5208"  # refused while draining, still listening
        assert server.is_alive()
        engine.release()
        assert in_flight()[0].json()["errorcode"] == 0
    server.join(10)
    assert not server.is_alive()


def test_shutdown_ends_within_the_drain_timeout_whatever_a_client_does():
    """A client stalled mid-body (its body timeout longer than the drain) holds a request in
    flight through the drain. Near its end the body is given up and answered with the vendor's
    retryable error, and the server is gone within drain_timeout_s: not after Hypercorn's
    graceful_timeout on top (which serve sets to the same drain_timeout_s), and not with the
    bare 500 of a connection cut mid-request."""
    import argparse
    import socket

    from gateway.cli import hypercorn_config, serve_until
    from gateway.config import with_defaults

    drain_s = 2.0
    config = with_defaults({"server": {"drain_timeout_s": drain_s, "body_timeout_s": 60.0}})
    app = create_app(config, FakeEngine())
    port = _free_port()
    hconfig = hypercorn_config(argparse.Namespace(host="127.0.0.1", port=port), config)
    assert hconfig.graceful_timeout == drain_s
    loop_box: dict = {}

    def run():
        async def main():
            loop_box["loop"] = asyncio.get_running_loop()
            loop_box["stop"] = asyncio.Event()
            await serve_until(app, hconfig, loop_box["stop"], drain_timeout=drain_s)

        asyncio.run(main())

    server = threading.Thread(target=run, daemon=True)
    server.start()
    _wait_until_serving(f"http://127.0.0.1:{port}")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as stalled:
        stalled.sendall(b"POST /hex/ocrapi/creditcardocr HTTP/1.1\r\nHost: gw\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        deadline = time.monotonic() + 5
        while app.state.gateway.metrics.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.state.gateway.metrics.in_flight == 1
        stopped = time.monotonic()
        loop_box["loop"].call_soon_threadsafe(loop_box["stop"].set)
        server.join(30)
        took = time.monotonic() - stopped
        answer = b""
        while chunk := stalled.recv(65536):
            answer += chunk
    assert not server.is_alive()
    # Generous on a loaded machine, and still under the two drain_timeouts it took before.
    assert drain_s / 2 <= took < 2 * drain_s - 0.25, took
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    assert outcome("hex", 200, body) == (False, DRAINING["hex"])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never came up")


# --- body limit while streaming --------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_oversize_streamed_body_is_cut_off_in_the_dialects_own_error(dialect):
    app = create_app({}, FakeEngine())
    limit = next(d for d in app.state.gateway.dialects if d.name == dialect).limits.max_body_bytes
    _, path, headers, _ = build_request(dialect, CARD, Credentials(), "gw")
    chunk = b"A" * 65536
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < 10_000}  # 655 MB if all read

    async def send_(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"gw"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1), "server": ("gw", 80),
    }
    asyncio.run(app(scope, receive, send_))
    assert pulled * len(chunk) <= limit + len(chunk)  # stopped at the first chunk past the limit
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert not outcome(dialect, status, body)[0]
    if dialect in ("huawei", "facepp"):  # the dialects whose errors are HTTP statuses
        assert status == 413


# --- logs -----------------------------------------------------------------------------------------


def test_logs_never_hold_a_full_card_number_or_image_bytes(caplog):
    engine = FakeEngine()
    client = TestClient(create_app({}, engine))
    image_b64 = base64.b64encode(CARD).decode()
    with caplog.at_level(logging.DEBUG):
        for dialect in DIALECTS:
            method, path, headers, body = build_request(dialect, CARD, Credentials(), "testserver")
            response = client.request(method, path, headers=headers, content=body)
            assert NUMBER in response.text.replace(" ", "")  # the caller does get it
        client.post("/hex/ocrapi/creditcardocr", json={"image": image_b64[:-7] + "@@@@@@@"})
    access = [r.fields for r in caplog.records if r.name == "cardgate.access"]
    assert len(access) == len(DIALECTS) + 1
    for line in access:
        assert {"request_id", "dialect", "route", "status", "error", "code", "latency_ms"} <= set(line)
    assert access[-1]["code"] == "-1102" or access[-1]["error"] == "BadBase64Error"
    text = "".join(JsonFormatter().format(r) for r in caplog.records)  # as written on stderr, fields and all
    assert NUMBER not in text and NUMBER[:6] + " " not in text
    assert image_b64[:64] not in text and repr(CARD[:32])[2:-1] not in text


def test_engine_time_is_recorded_when_the_engine_refuses_the_image():
    from engine.errors import NoCardFoundError

    client = TestClient(create_app({}, FakeEngine(error=NoCardFoundError())))
    r = client.post("/v2/p/ocr/bankcard", json={"image": base64.b64encode(CARD).decode()})
    assert r.status_code == 400
    metrics = samples(client)
    assert value(metrics, "cardgate_stage_duration_seconds_count", stage="engine") == 1
    assert value(metrics, "cardgate_overhead_seconds_count", dialect="huawei") == 1
    assert value(metrics, "cardgate_requests_total", dialect="huawei", status="400", code="AIS.0104") == 1


def test_serve_with_workers_refuses_a_port_another_gateway_listens_on(caplog):
    """The workers' SO_REUSEPORT sockets would bind beside a gateway already serving the port and
    share its connections; `serve --workers N` refuses to start instead."""
    from gateway.cli import bind_problem, main, reuse_port_socket

    running = reuse_port_socket("127.0.0.1", 0, 8)  # a worker of a gateway already running
    port = running.getsockname()[1]
    try:
        assert bind_problem("127.0.0.1", port)
        assert main(["serve", "--port", str(port), "--workers", "2"]) == 1
        assert "already in use" in caplog.text  # a log line (tests/test_logs.py: as it reaches stderr)
    finally:
        running.close()
    assert bind_problem("127.0.0.1", port) is None
