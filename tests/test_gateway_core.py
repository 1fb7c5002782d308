"""The shared machinery: request flow, body limit, image input, fetching, runner, logs, config, CLI."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading

import httpx
import msgspec
import pytest
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from adapters import DIALECTS, load_dialects
from adapters.base import VendorError
from core.limits import ImageLimits
from core.request import EngineCall, ImageSource, IncomingRequest
from engine import errors as engine_errors
from engine.types import ReadOptions
from core import errors as gateway_errors
from gateway.app import create_app, safe_render_error
from core.body import read_body
from gateway.cli import decide_unsigned, main as cli_main
from gateway.config import ConfigError, has_credentials, load_config, with_defaults
from gateway.logs import JsonFormatter
from core.strict_base64 import decode_base64_strict
from gateway.images import check_image, fetch_image, image_dimensions, is_forbidden_address, sniff_format
from gateway.runner import EngineRunner
from tests.fakes import (
    DEFAULT_NUMBER,
    GIF_BYTES,
    TINY_JPEG,
    WEBP_BYTES,
    FakeEngine,
    fake_card_image,
    png_header,
)


# --- a vendor-neutral dialect double --------------------------------------------


class ToyDialect:
    """The smallest Dialect: JSON {"image": b64} or {"url": ...}; errors as {"error": ExceptionName}."""

    name = "toy"

    def __init__(self, limits: ImageLimits | None = None):
        self.limits = limits or ImageLimits(
            max_body_bytes=4096, max_image_bytes=2048, fetch_timeout_s=1.0, max_pixels=1_000_000
        )
        self.count = 0
        self._lock = threading.Lock()
        self.seen: list[IncomingRequest] = []

    def routes(self):
        return [("/toy/read", ["POST"]), ("/toy/{tenant}/read", ["POST"])]

    def owns_path(self, path):
        return path.startswith("/toy/")

    def new_request_id(self):
        with self._lock:
            self.count += 1
            return f"toy-{self.count}"

    def authenticate(self, req, now):
        if req.header("x-toy-key") == "bad":
            raise VendorError("auth", "bad key")
        return req.header("x-toy-key")

    def parse(self, req):
        self.seen.append(req)
        body = json.loads(req.body)
        if body.get("crash"):
            raise KeyError("dialect bug")
        if "url" in body:
            source = ImageSource(url=body["url"])
        else:
            source = ImageSource(data=decode_base64_strict(body["image"]))
        return EngineCall(image=source, options=ReadOptions(min_side=body.get("min_side", 0)))

    def render(self, call, reading, request_id, elapsed_ms):
        return JSONResponse({"number": reading.number, "request_id": request_id, "credential": call.credential})

    def render_error(self, exc, request_id, req=None):
        code = exc.code if isinstance(exc, VendorError) else type(exc).__name__
        status = 404 if isinstance(exc, gateway_errors.RouteNotFoundError) else 400
        return JSONResponse({"error": code, "request_id": request_id}, status_code=status)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def toy():
    return ToyDialect()


def make_client(engine=None, dialect=None, config=None, **kwargs):
    app = create_app(config or {}, engine or FakeEngine(), dialects=[dialect or ToyDialect()], **kwargs)
    return TestClient(app, raise_server_exceptions=True)


# --- request flow ------------------------------------------------------------------


def test_success_runs_the_whole_flow(toy):
    engine = FakeEngine(number_from_image=True)
    client = make_client(engine, toy)
    response = client.post(
        "/toy/acme/read?x=1", json={"image": b64(fake_card_image("4111111111111111"))}, headers={"X-Toy-Key": "k1"}
    )
    assert response.status_code == 200
    assert response.json() == {"number": "4111111111111111", "request_id": "toy-1", "credential": "k1"}
    seen = toy.seen[-1]
    assert seen.path == "/toy/acme/read" and seen.raw_path == b"/toy/acme/read"
    assert seen.query_string == b"x=1"
    assert seen.path_params == {"tenant": "acme"}
    assert ("x-toy-key", "k1") in seen.headers
    assert engine.images == [fake_card_image("4111111111111111")]


def test_auth_and_parse_errors_are_rendered_by_the_dialect(toy):
    client = make_client(dialect=toy)
    r = client.post("/toy/read", json={"image": b64(TINY_JPEG)}, headers={"X-Toy-Key": "bad"})
    assert r.status_code == 400 and r.json()["error"] == "auth"
    r = client.post("/toy/read", json={"image": "not base64!"})
    assert r.json()["error"] == "BadBase64Error"


@pytest.mark.parametrize(
    "error",
    [engine_errors.NoCardFoundError(), engine_errors.ImageDecodeError(), engine_errors.NumberUnreadableError()],
)
def test_engine_errors_reach_the_dialect(error):
    client = make_client(FakeEngine(error=error))
    r = client.post("/toy/read", json={"image": b64(TINY_JPEG)})
    assert r.json()["error"] == type(error).__name__


def test_unexpected_dialect_exception_is_rendered_not_a_500(caplog):
    with caplog.at_level(logging.ERROR, logger="cardgate.gateway"):
        r = make_client().post("/toy/read", json={"image": b64(TINY_JPEG), "crash": True})
    assert r.status_code == 400 and r.json()["error"] == "KeyError"
    assert "Traceback" not in r.text
    assert any(rec.exc_info and rec.exc_info[0] is KeyError for rec in caplog.records)  # kept server side


def test_broken_render_error_gives_a_bare_500_without_trace(caplog):
    class Broken(ToyDialect):
        def render_error(self, exc, request_id, req=None):
            raise RuntimeError("oops")

    response = safe_render_error(Broken(), ValueError("x"), "rid-1", None)
    assert response.status_code == 500
    assert json.loads(response.body) == {"error": "internal error", "request_id": "rid-1"}


def test_limits_tighten_engine_options():
    dialect = ToyDialect(ImageLimits(max_body_bytes=4096, max_image_bytes=2048, fetch_timeout_s=1,
                                     max_pixels=5000, min_side=20))
    engine = FakeEngine()
    client = make_client(engine, dialect)
    client.post("/toy/read", json={"image": b64(TINY_JPEG)})
    client.post("/toy/read", json={"image": b64(TINY_JPEG), "min_side": 50})
    assert engine.options[0].max_pixels == 5000 and engine.options[0].min_side == 20
    assert engine.options[1].min_side == 50  # the stricter wins


def test_gif_and_oversize_image_refused_before_the_engine():
    engine = FakeEngine()
    client = make_client(engine)
    assert client.post("/toy/read", json={"image": b64(GIF_BYTES)}).json()["error"] == "UnsupportedFormatError"
    big = b"\xff\xd8\xff" + b"\x00" * 2100
    dialect = ToyDialect(ImageLimits(max_body_bytes=10_000, max_image_bytes=2048, fetch_timeout_s=1, max_pixels=10))
    r = make_client(engine, dialect).post("/toy/read", json={"image": b64(big)})
    assert r.json()["error"] == "ImageTooLargeBytesError"
    assert engine.calls == []


def test_max_side_checked_from_the_header():
    dialect = ToyDialect(ImageLimits(max_body_bytes=4096, max_image_bytes=2048, fetch_timeout_s=1,
                                     max_pixels=10**9, max_side=4000))
    engine = FakeEngine()
    client = make_client(engine, dialect)
    assert client.post("/toy/read", json={"image": b64(png_header(4001, 10))}).json()["error"] == "ImageTooLargeError"
    assert client.post("/toy/read", json={"image": b64(png_header(4000, 10))}).status_code == 200
    assert len(engine.calls) == 1


# --- unknown paths, methods, health ---------------------------------------------------


def test_unknown_path_owned_by_a_dialect(toy):
    client = make_client(dialect=toy)
    r = client.post("/toy/nothing-here", content=b"{}")
    assert r.status_code == 404 and r.json() == {"error": "RouteNotFoundError", "request_id": "toy-1"}


def test_wrong_method_is_answered_by_the_dialect():
    r = make_client().get("/toy/read")
    assert r.status_code == 404 and r.json()["error"] == "RouteNotFoundError"


def test_unknown_path_owned_by_nobody_is_plain_json_404():
    r = make_client().get("/somewhere/else")
    assert r.status_code == 404
    assert r.json() == {"error": "not found", "path": "/somewhere/else"}


def test_healthz_and_readyz():
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    not_ready = FakeEngine()
    not_ready.ready = False
    assert make_client(not_ready).get("/readyz").status_code == 503
    app = create_app({}, None, dialects=[ToyDialect()])
    assert TestClient(app).get("/readyz").json() == {"ready": False}


# --- body limit ------------------------------------------------------------------------


def test_declared_body_over_the_limit_is_refused(toy):
    engine = FakeEngine()
    r = make_client(engine, toy).post("/toy/read", content=b"x" * 5000)
    assert r.json()["error"] == "BodyTooLargeError"
    assert engine.calls == [] and toy.seen == []


def test_streamed_body_over_the_limit_is_refused_live(live_gateway):
    url = live_gateway(create_app({}, FakeEngine(), dialects=[ToyDialect()]))

    def chunks():  # chunked transfer encoding: no Content-Length to check up front
        for _ in range(10):
            yield b"x" * 1000

    r = httpx.post(url + "/toy/read", content=chunks())
    assert r.json()["error"] == "BodyTooLargeError"


def test_config_limit_caps_the_dialect_limit():
    r = make_client(config={"limits": {"max_body_bytes": 100}}).post(
        "/toy/read", json={"image": b64(TINY_JPEG)}
    )
    assert r.json()["error"] == "BodyTooLargeError"


class _FakeRequest:
    """Just enough of starlette.Request for read_body: headers and stream()."""

    def __init__(self, chunks, content_length=None):
        self.headers = {} if content_length is None else {"content-length": str(content_length)}
        self._chunks = chunks
        self.consumed = 0

    async def stream(self):
        for chunk in self._chunks:
            self.consumed += 1
            yield chunk


def test_read_body_stops_at_the_first_chunk_past_the_limit():
    request = _FakeRequest([b"a" * 100] * 1000)
    with pytest.raises(gateway_errors.BodyTooLargeError):
        asyncio.run(read_body(request, 250))
    assert request.consumed == 3  # not the remaining 997 chunks


def test_read_body_refuses_declared_length_without_reading():
    request = _FakeRequest([b"a"], content_length=10_000)
    with pytest.raises(gateway_errors.BodyTooLargeError):
        asyncio.run(read_body(request, 250))
    assert request.consumed == 0


def test_read_body_at_the_limit_is_fine():
    assert asyncio.run(read_body(_FakeRequest([b"a" * 125, b"b" * 125]), 250)) == b"a" * 125 + b"b" * 125


# --- base64 and formats -------------------------------------------------------------------


def test_strict_base64_accepts_standard_base64():
    assert decode_base64_strict(b64(TINY_JPEG)) == TINY_JPEG
    assert decode_base64_strict(b64(b"ab").encode()) == b"ab"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "YWJj\nZGVm",  # line break
        " YWJj",  # leading space
        "YWI",  # padding missing
        "YW=I",  # padding inside
        "-_-_",  # URL-safe alphabet
        "YWJj!",
        "ÿÿÿÿ",
        "data:image/jpeg;base64,YWJj",  # data URI unless the dialect allows it
    ],
)
def test_strict_base64_refuses(text):
    with pytest.raises(gateway_errors.BadBase64Error):
        decode_base64_strict(text)


def test_data_uri_only_when_allowed():
    assert decode_base64_strict("data:image/png;base64,YWJj", allow_data_uri=True) == b"abc"
    with pytest.raises(gateway_errors.BadBase64Error):
        decode_base64_strict("data:image/png;base64,YW Jj", allow_data_uri=True)


@pytest.mark.parametrize(
    "data,fmt",
    [
        (TINY_JPEG, "jpeg"),
        (png_header(3, 4), "png"),
        (b"BM" + b"\x00" * 30, "bmp"),
        (b"II*\x00" + b"\x00" * 8, "tiff"),
        (b"MM\x00*" + b"\x00" * 8, "tiff"),
        (GIF_BYTES, "gif"),
        (WEBP_BYTES, "webp"),
        (b"hello world", None),
    ],
)
def test_sniff_format(data, fmt):
    assert sniff_format(data) == fmt


def test_check_image_formats_and_size():
    limits = ImageLimits(max_body_bytes=10, max_image_bytes=2000, fetch_timeout_s=1, max_pixels=10)
    assert check_image(TINY_JPEG, limits) == "jpeg"
    assert check_image(b"garbage", limits) is None  # left to the engine's decoder
    for data in (GIF_BYTES, WEBP_BYTES):
        with pytest.raises(gateway_errors.UnsupportedFormatError):
            check_image(data, limits)
    with pytest.raises(gateway_errors.ImageTooLargeBytesError):
        check_image(b"\xff\xd8\xff" + b"\0" * 2000, limits)
    only_png = ImageLimits(max_body_bytes=10, max_image_bytes=2000, fetch_timeout_s=1, max_pixels=10,
                           formats=frozenset({"png"}))
    with pytest.raises(gateway_errors.UnsupportedFormatError):
        check_image(TINY_JPEG, only_png)


def test_image_dimensions_from_headers():
    assert image_dimensions(TINY_JPEG) == (40, 24)
    assert image_dimensions(png_header(640, 480)) == (640, 480)
    bmp = b"BM" + b"\0" * 16 + (300).to_bytes(4, "little") + (-200).to_bytes(4, "little", signed=True)
    assert image_dimensions(bmp) == (300, 200)
    assert image_dimensions(b"\xff\xd8\xff") is None
    assert image_dimensions(GIF_BYTES) is None


# --- fetching ------------------------------------------------------------------------------

FETCH_LIMITS = ImageLimits(max_body_bytes=10_000, max_image_bytes=1000, fetch_timeout_s=0.5, max_pixels=10**6)


def resolver_for(table: dict[str, list[str]]):
    async def resolve(host, port):
        if host not in table:
            raise gateway_errors.FetchError(f"cannot resolve {host}")
        return table[host]

    return resolve


PUBLIC = resolver_for(
    {
        "cards.example.com": ["93.184.216.34"],
        "cdn.example.com": ["93.184.216.35"],
        "internal.example.com": ["10.1.2.3"],
        "mixed.example.com": ["93.184.216.36", "192.168.1.5"],
        "metadata.example.com": ["169.254.169.254"],
        "v6meta.example.com": ["fd00:ec2::254"],
    }
)


def fetch(url, *, allow_private=False, limits=FETCH_LIMITS, resolver=PUBLIC):
    async def go():
        async with httpx.AsyncClient() as client:
            return await fetch_image(url, limits, allow_private, client, resolver=resolver)

    return asyncio.run(go())


def test_fetch_downloads_a_public_image(respx_mock):
    respx_mock.get("http://cards.example.com/card.jpg").respond(200, content=TINY_JPEG[:900])
    assert fetch("http://cards.example.com/card.jpg") == TINY_JPEG[:900]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/card.jpg",
        "http://127.1.2.3:8080/card.jpg",
        "http://[::1]/card.jpg",
        "http://[::ffff:127.0.0.1]/card.jpg",
        "http://10.0.0.7/card.jpg",
        "http://172.16.0.1/card.jpg",
        "http://192.168.0.1/card.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/card.jpg",
        "http://224.0.0.1/card.jpg",
        "http://0.0.0.0/card.jpg",
        "http://100.64.0.1/card.jpg",
        "http://internal.example.com/card.jpg",
        "http://mixed.example.com/card.jpg",
        "http://metadata.example.com/card.jpg",
        "https://v6meta.example.com/card.jpg",
        "ftp://cards.example.com/card.jpg",
        "file:///etc/passwd",
        "gopher://cards.example.com/",
    ],
)
@pytest.mark.respx(assert_all_called=False)
def test_fetch_refuses_non_public_targets(url, respx_mock):
    route = respx_mock.route().respond(200, content=b"secret")
    with pytest.raises(gateway_errors.FetchForbiddenError):
        fetch(url)
    assert not route.called


def test_fetch_private_allowed_when_configured(respx_mock):
    respx_mock.get("http://127.0.0.1:9999/card.jpg").respond(200, content=b"\xff\xd8\xffok")
    assert fetch("http://127.0.0.1:9999/card.jpg", allow_private=True) == b"\xff\xd8\xffok"


@pytest.mark.respx(assert_all_called=False)
def test_fetch_rechecks_each_redirect(respx_mock):
    respx_mock.get("http://cards.example.com/a").respond(302, headers={"Location": "http://169.254.169.254/latest"})
    metadata = respx_mock.get("http://169.254.169.254/latest").respond(200, content=b"creds")
    with pytest.raises(gateway_errors.FetchForbiddenError):
        fetch("http://cards.example.com/a")
    assert not metadata.called


@pytest.mark.respx(assert_all_called=False)
def test_fetch_redirect_to_private_name_refused(respx_mock):
    respx_mock.get("http://cards.example.com/a").respond(301, headers={"Location": "http://internal.example.com/x"})
    internal = respx_mock.get("http://internal.example.com/x").respond(200, content=b"x")
    with pytest.raises(gateway_errors.FetchForbiddenError):
        fetch("http://cards.example.com/a")
    assert not internal.called


def test_fetch_follows_public_redirects_relative_and_absolute(respx_mock):
    respx_mock.get("http://cards.example.com/a").respond(302, headers={"Location": "/b"})
    respx_mock.get("http://cards.example.com/b").respond(307, headers={"Location": "https://cdn.example.com/c.jpg"})
    respx_mock.get("https://cdn.example.com/c.jpg").respond(200, content=b"\xff\xd8\xffimg")
    assert fetch("http://cards.example.com/a") == b"\xff\xd8\xffimg"


@pytest.mark.respx(assert_all_called=False)
def test_fetch_redirects_are_bounded(respx_mock):
    for i in range(5):
        respx_mock.get(f"http://cards.example.com/{i}").respond(302, headers={"Location": f"/{i + 1}"})
    with pytest.raises(gateway_errors.FetchError, match="redirects"):
        fetch("http://cards.example.com/0")


def test_fetch_redirect_to_other_scheme_refused(respx_mock):
    respx_mock.get("http://cards.example.com/a").respond(302, headers={"Location": "file:///etc/passwd"})
    with pytest.raises(gateway_errors.FetchForbiddenError):
        fetch("http://cards.example.com/a")


@pytest.mark.parametrize("exc", [httpx.ConnectTimeout("slow"), httpx.ReadTimeout("slow")])
def test_fetch_timeouts(exc, respx_mock):
    respx_mock.get("http://cards.example.com/card.jpg").mock(side_effect=exc)
    with pytest.raises(gateway_errors.FetchTimeoutError):
        fetch("http://cards.example.com/card.jpg")


def test_fetch_total_timeout_covers_a_slow_server(respx_mock):
    async def slow(request):
        await asyncio.sleep(5)
        return httpx.Response(200, content=b"late")

    respx_mock.get("http://cards.example.com/card.jpg").mock(side_effect=slow)
    limits = ImageLimits(max_body_bytes=10, max_image_bytes=1000, fetch_timeout_s=0.1, max_pixels=10)
    with pytest.raises(gateway_errors.FetchTimeoutError):
        fetch("http://cards.example.com/card.jpg", limits=limits)


def test_fetch_connection_error_and_http_errors(respx_mock):
    respx_mock.get("http://cards.example.com/down").mock(side_effect=httpx.ConnectError("refused"))
    respx_mock.get("http://cards.example.com/missing").respond(404)
    for path in ("down", "missing"):
        with pytest.raises(gateway_errors.FetchError) as info:
            fetch(f"http://cards.example.com/{path}")
        assert type(info.value) is gateway_errors.FetchError


def test_fetch_unresolvable_host():
    with pytest.raises(gateway_errors.FetchError):
        fetch("http://nowhere.example.com/card.jpg")


def test_fetch_stops_reading_past_the_image_limit(respx_mock):
    respx_mock.get("http://cards.example.com/declared").respond(200, content=b"x" * 1001)

    async def stream():
        for _ in range(100):
            yield b"y" * 100

    respx_mock.get("http://cards.example.com/chunked").mock(
        return_value=httpx.Response(200, content=stream())
    )
    for path in ("declared", "chunked"):
        with pytest.raises(gateway_errors.FetchTooLargeError):
            fetch(f"http://cards.example.com/{path}")


def test_forbidden_address_table():
    assert not is_forbidden_address("93.184.216.34")
    assert not is_forbidden_address("2606:2800:220:1:248:1893:25c8:1946")
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00:ec2::254", "::1", "fe80::1%eth0",
                    "::ffff:10.0.0.1", "255.255.255.255", "240.0.0.1", "not-an-ip"):
        assert is_forbidden_address(address), address


def test_app_fetches_urls_with_the_injected_resolver(respx_mock):
    respx_mock.get("http://cards.example.com/c.jpg").respond(200, content=fake_card_image("4111111111111111"))
    engine = FakeEngine(number_from_image=True)
    client = make_client(engine, resolver=PUBLIC)
    r = client.post("/toy/read", json={"url": "http://cards.example.com/c.jpg"})
    assert r.json()["number"] == "4111111111111111"
    r = client.post("/toy/read", json={"url": "http://10.0.0.1/c.jpg"})
    assert r.json()["error"] == "FetchForbiddenError"


# --- engine runner ---------------------------------------------------------------------------


def test_runner_refuses_when_the_queue_is_full():
    engine = FakeEngine(delay_s=0.3)
    runner = EngineRunner(threads=1, queue_size=1)

    async def go():
        tasks = [asyncio.create_task(runner.run(engine.read, b"x", ReadOptions())) for _ in range(3)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(go())
    busy = [r for r in results if isinstance(r, gateway_errors.EngineBusyError)]
    assert len(busy) == 1 and len(engine.calls) == 2
    assert runner.pending == 0
    runner.shutdown()


def test_runner_runs_threads_in_parallel_and_off_the_loop():
    engine = FakeEngine(delay_s=0.2)
    runner = EngineRunner(threads=3, queue_size=0)

    async def go():
        ticks = 0

        async def ticker():
            nonlocal ticks
            for _ in range(5):
                await asyncio.sleep(0.02)
                ticks += 1

        await asyncio.gather(ticker(), *(runner.run(engine.read, b"x", ReadOptions()) for _ in range(3)))
        return ticks

    assert asyncio.run(go()) == 5  # the loop kept running while the engine slept
    assert engine.max_concurrent == 3
    runner.shutdown()


def test_runner_runs_engine_threads_below_the_event_loop():
    def my_nice():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    runner = EngineRunner(1, 0, nice=5)
    loop_nice = my_nice()
    engine_nice = asyncio.run(runner.run(my_nice))
    assert engine_nice == min(loop_nice + 5, 19)
    assert my_nice() == loop_nice  # the loop's own thread is untouched
    runner.shutdown()


def test_runner_propagates_engine_errors():
    runner = EngineRunner(1, 0)
    with pytest.raises(engine_errors.NoCardFoundError):
        asyncio.run(runner.run(FakeEngine(error=engine_errors.NoCardFoundError()).read, b"x", ReadOptions()))
    assert runner.pending == 0


def test_busy_engine_answers_the_dialect_busy_error_live(live_gateway):
    engine = FakeEngine(delay_s=0.5)
    app = create_app({"engine": {"threads": 1, "queue_size": 0}}, engine, dialects=[ToyDialect()])
    url = live_gateway(app)

    async def go():
        async with httpx.AsyncClient(base_url=url) as client:
            return await asyncio.gather(
                *(client.post("/toy/read", json={"image": b64(TINY_JPEG)}) for _ in range(3))
            )

    bodies = [r.json() for r in asyncio.run(go())]
    assert sum("number" in b for b in bodies) == 1
    assert [b["error"] for b in bodies if "error" in b] == ["EngineBusyError"] * 2


ALL_ERRORS = [
    gateway_errors.BodyTooLargeError(),
    gateway_errors.BodyTimeoutError(),
    gateway_errors.BadBase64Error(),
    gateway_errors.ImageTooLargeBytesError(),
    gateway_errors.UnsupportedFormatError("gif"),
    gateway_errors.FetchError("x"),
    gateway_errors.FetchTimeoutError("x"),
    gateway_errors.FetchForbiddenError("x"),
    gateway_errors.FetchTooLargeError("x"),
    gateway_errors.EngineBusyError(),
    gateway_errors.RateLimitedError(),
    gateway_errors.RouteNotFoundError(),
    gateway_errors.ShuttingDownError(),
    engine_errors.ImageDecodeError(),
    engine_errors.ImageTooLargeError(),
    engine_errors.ImageTooSmallError(),
    engine_errors.NoCardFoundError(),
    engine_errors.NumberUnreadableError(),
    engine_errors.ImageBlurredError(),
    RuntimeError("unexpected"),
]


@pytest.mark.parametrize("dialect", load_dialects(with_defaults({}), True), ids=lambda d: d.name)
def test_every_dialect_renders_every_shared_error(dialect):
    """The contract every adapter keeps: any exception -> its own error shape, never a raise or a trace.

    (A vendor's documented internal/unavailable error may well be a 5xx.)"""
    req = IncomingRequest("POST", "/", b"/", b"", [], b"")
    for error in ALL_ERRORS:
        response = dialect.render_error(error, dialect.new_request_id(), req)
        assert 200 <= response.status_code < 600, (dialect.name, error)
        assert response.body and b"Traceback" not in response.body


def test_load_dialects_skips_disabled_and_missing(monkeypatch):
    names = [d.name for d in load_dialects(with_defaults({"hex": {"enabled": False}}), True)]
    assert "hex" not in names
    monkeypatch.setitem(DIALECTS, "nosuch", "adapters.nosuch_vendor")
    assert "nosuch" not in [d.name for d in load_dialects(with_defaults({}), True)]


# --- logs -------------------------------------------------------------------------------------


def test_access_log_is_one_json_line_without_card_data(caplog):
    """Each line as gateway.logs writes it: time, level, logger, message, then the request fields."""
    engine = FakeEngine()
    client = make_client(engine)
    image = b64(fake_card_image(DEFAULT_NUMBER))
    with caplog.at_level(logging.INFO):
        client.post("/toy/read", json={"image": image}, headers={"X-Toy-Key": "k9"})
        client.post("/toy/read", json={"image": "@@"})
        client.get("/nowhere")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "cardgate.access"]
    assert len(lines) == 3
    ok, bad, missing = lines
    assert list(ok)[:4] == ["time", "level", "logger", "message"] and ok["time"].endswith("Z")
    assert ok["level"] == "INFO" and ok["logger"] == "cardgate.access" and ok["message"] == "POST /toy/read 200"
    assert ok["request_id"] == "toy-1" and ok["dialect"] == "toy" and ok["route"] == "/toy/read"
    assert ok["status"] == 200 and ok["error"] is None and ok["credential"] == "k9"
    assert isinstance(ok["latency_ms"], float)
    assert bad["error"] == "BadBase64Error" and bad["status"] == 400
    assert missing["status"] == 404
    written = "".join(JsonFormatter().format(r) for r in caplog.records)
    assert DEFAULT_NUMBER not in written and image not in written


# --- concurrency ------------------------------------------------------------------------------


def test_many_simultaneous_requests_each_get_their_own_answer(live_gateway):
    engine = FakeEngine(number_from_image=True, delay_s=0.01)
    app = create_app({"engine": {"threads": 4, "queue_size": 64}}, engine, dialects=[ToyDialect()])
    url = live_gateway(app)
    numbers = [f"62258800{i:08d}" for i in range(40)]

    async def go():
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            return await asyncio.gather(
                *(client.post("/toy/read", json={"image": b64(fake_card_image(n))}) for n in numbers)
            )

    bodies = [r.json() for r in asyncio.run(go())]
    assert [b["number"] for b in bodies] == numbers
    assert len({b["request_id"] for b in bodies}) == len(numbers)


# --- config -----------------------------------------------------------------------------------


def test_config_defaults():
    config = load_config(None)
    assert config.fetch.allow_private is False
    assert msgspec.structs.asdict(config.engine) == {"threads": 1, "queue_size": 8, "nice": 19, "blur_floor": 0}
    for vendor in ("tencent", "myqcloud", "huawei", "facepp", "hex"):
        assert config.dialects[vendor] == type(config.dialects[vendor])()


def test_config_file(tmp_path):
    path = tmp_path / "cardgate.toml"
    path.write_text(
        """
[tencent.credentials]
AKIDEXAMPLE = "tencent-secret-key"
[huawei]
tokens = ["opaque-token-1"]
[myqcloud.apps.1250000000]
secret_id = "AKIDMYQ"
secret_key = "myq-secret-key"
[fetch]
allow_private = true
[engine]
threads = 3
"""
    )
    config = load_config(str(path))
    assert config.dialects["tencent"].credentials == {"AKIDEXAMPLE": "tencent-secret-key"}
    assert config.dialects["myqcloud"].apps["1250000000"].secret_id == "AKIDMYQ"
    assert config.fetch.allow_private is True
    assert msgspec.structs.asdict(config.engine) == {"threads": 3, "queue_size": 8, "nice": 19, "blur_floor": 0}
    assert has_credentials(config, "tencent") and has_credentials(config, "huawei")
    assert has_credentials(config, "myqcloud") and not has_credentials(config, "facepp")


@pytest.mark.parametrize(
    "text,key",
    [
        ("[fetch]\nallow_private = 'yes'", "[fetch] allow_private"),
        ("[engine]\nthreads = 0", "[engine] threads"),
        ("[engine]\nqueue_size = true", "[engine] queue_size"),
        ("fetch = 3", "[fetch]"),
        ("[tencent.credentials]\nAKID = 5", "[tencent.credentials] AKID"),
        ("[log]\nlevel = 'LOUD'", "[log] level"),
        ("[hex]\nenabled = 'no'", "[hex] enabled"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(str(path))


def test_config_unreadable(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.toml"))
    path = tmp_path / "broken.toml"
    path.write_text("[fetch\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_config(str(path))


# --- CLI ----------------------------------------------------------------------------------------


def test_unsigned_policy():
    empty = with_defaults({})
    allow, warnings, refusal = decide_unsigned(empty, "127.0.0.1", False)
    assert allow and refusal is None and "loopback" in warnings[0]
    assert decide_unsigned(empty, "::1", False)[0]
    allow, _, refusal = decide_unsigned(empty, "0.0.0.0", False)
    assert not allow and "--insecure" in refusal
    allow, warnings, refusal = decide_unsigned(empty, "0.0.0.0", True)
    assert allow and refusal is None and "--insecure" in warnings[0]
    some = with_defaults({"tencent": {"credentials": {"AKID": "k"}}})
    allow, warnings, refusal = decide_unsigned(some, "10.0.0.5", False)
    assert not allow and refusal is None and "refused" in warnings[0] and "tencent" not in warnings[0]


def test_cli_refuses_network_bind_without_credentials(caplog):
    with caplog.at_level(logging.ERROR):
        assert cli_main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "--insecure" in caplog.text


def test_cli_bad_config_and_no_command(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[engine]\nthreads = 'many'")
    assert cli_main(["serve", "--config", str(path)]) == 2
    assert "[engine] threads" in capsys.readouterr().err
    assert cli_main([]) == 2


def test_configured_blur_floor_reaches_the_engine():
    from gateway.app import create_app
    from tests.fakes import FakeEngine, TINY_JPEG_B64

    engine = FakeEngine()
    from starlette.testclient import TestClient

    client = TestClient(create_app({"engine": {"blur_floor": 25}}, engine))
    client.post("/hex/ocrapi/creditcardocr", json={"image": TINY_JPEG_B64})
    assert engine.last_options.blur_floor == 25
