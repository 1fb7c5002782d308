"""Shared helpers for the migration tests: per-dialect credentials for a gateway and its "vendor"."""
from __future__ import annotations

import json
import socket
import time

from adapters import migrate as vendors
from core.wire import Reply


def with_check_digit(body: str) -> str:
    """`body` plus its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


LOCAL_NUMBER = with_check_digit("621700001003038545")  # 19 digits
UPSTREAM_NUMBER = with_check_digit("622576008812345")  # 16 digits

# dialect -> config table of the gateway under test (client-facing keys), of the "vendor"
# (its own keys), the [<dialect>.shadow] credentials for that vendor, and the client's signing settings.
DIALECTS = {
    "tencent": dict(
        gateway={"credentials": {"AKIDCLIENT": "client-secret"}},
        vendor={"credentials": {"AKIDVENDOR": "vendor-secret"}},
        shadow={"secret_id": "AKIDVENDOR", "secret_key": "vendor-secret"},
        client={"secret_id": "AKIDCLIENT", "secret_key": "client-secret"},
    ),
    "huawei": dict(
        gateway={"credentials": {"HWCLIENT": "client-sk"}},
        vendor={"credentials": {"HWVENDOR": "vendor-sk"}},
        shadow={"access_key": "HWVENDOR", "secret_key": "vendor-sk", "project_id": "vendor-project"},
        client={"access_key": "HWCLIENT", "secret_key": "client-sk", "project_id": "client-project"},
    ),
    "myqcloud": dict(
        gateway={"apps": {"1250000001": {"secret_id": "AKIDMYQC", "secret_key": "client-myq"}}},
        vendor={"apps": {"1250000002": {"secret_id": "AKIDMYQV", "secret_key": "vendor-myq"}}},
        shadow={"appid": "1250000002", "secret_id": "AKIDMYQV", "secret_key": "vendor-myq", "bucket": "b"},
        client={"appid": "1250000001", "secret_id": "AKIDMYQC", "secret_key": "client-myq"},
    ),
    "facepp": dict(
        gateway={"credentials": {"fpp-client": "client-fpp-secret"}},
        vendor={"credentials": {"fpp-vendor": "vendor-fpp-secret"}},
        shadow={"api_key": "fpp-vendor", "api_secret": "vendor-fpp-secret"},
        client={"api_key": "fpp-client", "api_secret": "client-fpp-secret"},
    ),
    "hex": dict(
        gateway={"token": "client-token"},
        vendor={"token": "vendor-token"},
        shadow={"token": "vendor-token"},
        client={"token": "client-token"},
    ),
    "baidu": dict(
        gateway={"apps": {"10001": {"access_key": "bce-client-ak", "secret_access_key": "bce-client-sk"}}},
        vendor={"apps": {"10002": {"access_key": "bce-vendor-ak", "secret_access_key": "bce-vendor-sk"}}},
        shadow={"access_key": "bce-vendor-ak", "secret_access_key": "bce-vendor-sk"},
        client={"access_key": "bce-client-ak", "secret_access_key": "bce-client-sk"},
    ),
    "alibaba": dict(
        gateway={"credentials": {"LTAIclient": "client-acs-secret"}},
        vendor={"credentials": {"LTAIvendor": "vendor-acs-secret"}},
        shadow={"access_key_id": "LTAIvendor", "access_key_secret": "vendor-acs-secret"},
        client={"access_key_id": "LTAIclient", "access_key_secret": "client-acs-secret"},
    ),
}


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def client_request(test_client, dialect: str, image: bytes, settings: dict | None = None):
    """A request signed as the dialect's client would, sent through a Starlette TestClient."""
    wire = vendors.client_for(dialect).request_for_image(
        image, "http://testserver", DIALECTS[dialect]["client"] if settings is None else settings, time.time()
    )
    return test_client.request(wire.method, wire.url, headers=dict(wire.headers), content=wire.body)


def read_answer(dialect: str, response):
    """The comparable fields of an HTTP answer in `dialect`."""
    reply = Reply(status=response.status_code, content_type=response.headers.get("content-type", ""), body=response.content)
    return vendors.client_for(dialect).outcome(reply)


def wait_for(predicate, timeout: float = 5.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def read_jsonl(path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def test_send_waits_its_own_timeout_not_the_clients_default(live_gateway):
    """`compare --timeout` and [shadow] timeout_s bound the exchange: an upstream slower than the
    httpx client's own default (5 s a read; 0.2 s here) is waited for, up to timeout_s."""
    import asyncio

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from gateway.migrate.upstream import send
    from core.wire import WireRequest

    async def slow(request):
        await asyncio.sleep(0.6)
        return PlainTextResponse("late")

    base = live_gateway(Starlette(routes=[Route("/", slow, methods=["POST"])]))
    wire = WireRequest("POST", base + "/", [("content-type", "text/plain")], b"x")

    async def exchange(timeout_s: float) -> Reply:
        async with httpx.AsyncClient(timeout=0.2, trust_env=False) as http:
            return await send(http, wire, timeout_s)

    waited = asyncio.run(exchange(5.0))
    assert (waited.status, waited.body, waited.failure) == (200, b"late", None)
    assert asyncio.run(exchange(0.3)).failure == "timeout"
