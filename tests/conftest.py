"""Shared fixtures.

`live_gateway`: serve an ASGI app with Hypercorn on 127.0.0.1 (a free port) in a
background thread, for tests that need a real socket (the vendors' SDKs):

    def test_sdk(live_gateway):
        app = create_app({}, FakeEngine())
        base_url = live_gateway(app)          # "http://127.0.0.1:PORT"
        ...                                   # stopped when the test ends

`fake_engine` / `app` / `client`: a FakeEngine, create_app over it with every
available dialect (unsigned requests allowed), and a TestClient on that app.
"""
from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.testclient import TestClient

from tests.fakes import FakeEngine


class LiveServer:
    """One Hypercorn server in its own thread and event loop."""

    def __init__(self, app, host: str = "127.0.0.1"):
        self.app = app
        # Bind and listen here, so the port is known and connections queue up at once.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"live-gateway-{self.port}", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        config = Config()
        config.bind = [f"fd://{self._sock.detach()}"]  # Hypercorn owns (and closes) the socket now
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = 5.0

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            await serve(self.app, config, shutdown_trigger=self._stop.wait)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
            self._started.set()

    def start(self) -> "LiveServer":
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("live gateway did not start")
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: minutes, not seconds (a fresh clone's real install); `make test` runs it, "
        "-m 'not slow' leaves it out")


@pytest.fixture(autouse=True)
def _own_runtime_dir(monkeypatch, tmp_path_factory):
    """Each test its own default replay store (core/replay.py): a single-use signature a test
    sent, or one of another run, must not be a replay for the next one."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))


@pytest.fixture
def live_gateway():
    """A function `start(app) -> base_url`; every server started is stopped after the test."""
    servers: list[LiveServer] = []

    def start(app) -> str:
        server = LiveServer(app).start()
        servers.append(server)
        return server.base_url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def app(fake_engine):
    from gateway.app import create_app

    return create_app({}, fake_engine)


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client
