"""Failing requests leave nothing behind for the cycle collector (issue #18).

A request that fails (bad credentials, an engine error, the busy answer, a bad image) must free
its body and image the moment it is answered, by reference counting alone. An exception kept
in a variable of a frame its own traceback holds (`error = exc`, `answer.error = exc`) makes a
cycle: frame -> exception -> traceback -> frame, and with it every local of that frame, the
body and the decoded image among them, waits for the cycle collector. Under overload that
collector runs rarely compared with the bodies coming in, and memory grew by a gigabyte.

The test sends failing requests with the collector off and then asks it what it would free.
"""
from __future__ import annotations

import asyncio
import base64
import gc
import json
import threading

import pytest

from bench.clients import Credentials, build_request
from engine.errors import NoCardFoundError
from gateway.app import create_app
from tests.fakes import fake_card_image, make_reading

IMAGE_PADDING = 256 * 1024  # large enough to tell a request's body or image among what the collector frees
BIG = 100_000
HEX_TOKEN = "hex-token"
CONFIG = {"hex": {"token": HEX_TOKEN}, "engine": {"threads": 1, "queue_size": 0}}
DIALECTS = ("tencent", "huawei", "facepp", "myqcloud", "hex", "baidu", "alibaba")
ROUNDS = 1000


class FailingEngine:
    """Raises a fresh NoCardFoundError per read (a shared instance would keep its last traceback
    alive by itself), or, while `hold` is set, blocks the one engine thread so that every other
    request gets the busy answer."""

    ready = True

    def __init__(self):
        self.hold = threading.Event()
        self.release = threading.Event()
        self.reading = make_reading()

    def read(self, image, options):
        if self.hold.is_set():
            self.release.wait(30)
        raise NoCardFoundError("no card in this test")


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def failing_requests(count: int):
    """(method, path, headers, body) of `count` failing requests of every kind, over the dialects."""
    good = Credentials(hex_token=("Authorization", HEX_TOKEN))
    wrong = Credentials(hex_token=("Authorization", "not-the-token"))
    bad_base64 = json.dumps({"image": "@" * IMAGE_PADDING}).encode()
    # One image for all: every request still has a body and a decoded image of its own, and the
    # builders' base64 cache (bench/clients.py) does not grow with the count.
    image = fake_card_image(padding=IMAGE_PADDING)
    for i in range(count):
        kind = i % 3
        if kind == 0:  # the engine says no card
            yield build_request(DIALECTS[i % len(DIALECTS)], image, good, "gw")
        elif kind == 1:  # wrong token
            yield build_request("hex", image, wrong, "gw")
        else:  # not base64
            yield "POST", "/hex/ocrapi/creditcardocr", {"Authorization": HEX_TOKEN, "Content-Type": "application/json"}, bad_base64


async def asgi_request(app, method: str, target: str, headers: dict, body: bytes) -> int:
    """One request straight into the ASGI app; its status. No HTTP client in between: a client's
    own objects (httpx's ASGITransport keeps the request in cycles of its own) would hide the app's."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"gw"), (b"content-length", str(len(body)).encode()),
                    *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())],
        "client": ("127.0.0.1", 50000), "server": ("gw", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive():
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def send_all(app, engine: FailingEngine, count: int) -> list[int]:
    statuses = [await asgi_request(app, *request) for request in failing_requests(count)]
    # The busy answer: one read holds the only engine thread, the next ones are refused.
    engine.release.clear()
    engine.hold.set()
    creds = Credentials(hex_token=("Authorization", HEX_TOKEN))
    held = asyncio.create_task(asgi_request(app, *build_request("hex", fake_card_image(), creds, "gw")))
    for _ in range(2000):
        if app.state.gateway.runner.running or held.done():
            break
        await asyncio.sleep(0.005)
    assert app.state.gateway.runner.running == 1, "the held read never started"
    image = fake_card_image(padding=IMAGE_PADDING)
    for i in range(count // 4):
        statuses.append(await asgi_request(app, *build_request(DIALECTS[i % len(DIALECTS)], image, creds, "gw")))
    engine.release.set()
    await held
    engine.hold.clear()
    return statuses


def large_garbage(garbage: list) -> list:
    """The large bytes that the unreachable objects in `garbage` (gc.DEBUG_SAVEALL's) hold. Bytes
    are not tracked by the collector (they hold no references), so they are found as what the
    garbage frames, dicts and objects refer to."""
    found = {}
    for holder in garbage:
        for o in (holder, *gc.get_referents(holder)):
            if isinstance(o, (bytes, bytearray, str)) and len(o) > BIG:
                found[id(o)] = o
    return list(found.values())


@pytest.fixture
def collector_off():
    """gc off for the test body, with its debug flags and state restored after."""
    was_enabled, flags = gc.isenabled(), gc.get_debug()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


def test_failing_requests_free_their_bodies_without_the_cycle_collector(collector_off):
    engine = FailingEngine()
    app = create_app(CONFIG, engine)
    asyncio.run(send_all(app, engine, 40))  # warm up: imports, caches, the engine thread
    gc.collect()
    before = rss_kib()

    statuses = asyncio.run(send_all(app, engine, ROUNDS))

    grown_kib = rss_kib() - before
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds unreachable is kept for us to look at
    unreachable = gc.collect()
    left = large_garbage(gc.garbage)
    gc.garbage.clear()
    asyncio.run(app.state.gateway.close())
    assert len(statuses) == ROUNDS + ROUNDS // 4
    assert not [s for s in statuses if s >= 500 and s != 503], sorted(set(statuses))
    # Every request carried about 256 KB: with the cycles of before, 2,417 such bodies and images
    # were left to the collector, and RSS grew by hundreds of MiB.
    assert len(left) <= 2, f"{len(left)} bodies or images of > {BIG} bytes were left to the cycle collector"
    # The event loop's own objects are a few dozen; a cycle per request would be tens of thousands.
    assert unreachable < ROUNDS // 4, f"{unreachable} objects in cycles after {ROUNDS} failing requests"
    assert grown_kib < 16 * 1024, f"RSS grew by {grown_kib} KiB over {ROUNDS} failing requests"


def test_the_check_sees_a_cycle_when_there_is_one(collector_off):
    """The measurement itself: a frame that keeps its own exception is found."""

    def fails(body: bytes):
        try:
            raise ValueError("bad")
        except ValueError as exc:
            kept = exc  # noqa: F841 - the cycle: this frame -> exc -> traceback -> this frame
        return len(body)

    for i in range(20):
        fails(b"x" * (BIG + 1 + i))
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    assert len(large_garbage(gc.garbage)) == 20
