"""core/replay.py: keys seen once, in one SQLite file every worker shares, or in one Redis
every machine reaches ([replay] redis_url; those tests run a real redis-server, skipped without one)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import threading
import time

import pytest
from starlette.testclient import TestClient

from adapters import alibaba, alibaba_auth, myqcloud
from core import replay
from gateway.app import create_app
from gateway.config import ConfigError, parse_config
from core.errors import ReplayStoreUnavailableError
from core.replay import PURGE_EVERY_S, RedisReplayStore, ReplayStore, default_path, open_replay_store
from tests.fakes import FakeEngine, fake_card_image, make_reading


def test_a_key_is_new_once_then_seen_until_its_ttl_ends(tmp_path):
    store = ReplayStore(tmp_path / "r.sqlite3")
    assert not store.seen_before("a", 10, now=100)
    assert store.seen_before("a", 10, now=105)
    assert store.seen_before("a", 10, now=110)  # still live at its last second
    assert not store.seen_before("a", 10, now=110.5)  # expired: a new use, for a new ttl
    assert store.seen_before("a", 10, now=115)
    assert not store.seen_before("b", 10, now=115)


def test_two_stores_on_one_file_share_it(tmp_path):
    first, second = ReplayStore(tmp_path / "r.sqlite3"), ReplayStore(tmp_path / "r.sqlite3")
    assert not first.seen_before("k", 60, now=0)
    assert second.seen_before("k", 60, now=1)
    assert not second.seen_before("other", 60, now=1) and first.seen_before("other", 60, now=2)


def _claim(path: str, key: str, start, results) -> None:
    start.wait()
    results.put(ReplayStore(path).seen_before(key, 60))


def test_processes_racing_on_one_key_see_it_first_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    path = str(tmp_path / "r.sqlite3")
    ReplayStore(path).seen_before("warm", 60)  # the file and its WAL mode exist before the race
    workers = [context.Process(target=_claim, args=(path, "key", start, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = sorted(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(30)
    assert outcomes == [False, True, True, True]


def test_expired_rows_are_purged(tmp_path):
    store = ReplayStore(tmp_path / "r.sqlite3")
    for i in range(100):
        store.seen_before(f"k{i}", 5, now=0)
    assert len(store) == 100
    store.seen_before("later", 5, now=PURGE_EVERY_S + 10)
    assert len(store) == 1


def test_memory_store_needs_no_file():
    store = ReplayStore(":memory:")
    assert not store.seen_before("a", 1, now=0) and store.seen_before("a", 1, now=0.5)


def test_default_path_is_a_private_runtime_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_path() == tmp_path / "cardgate" / "replay.sqlite3"
    store = ReplayStore("")
    store.seen_before("a", 1)
    assert stat.S_IMODE(os.stat(tmp_path / "cardgate").st_mode) == 0o700
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_path().parent.name == f"cardgate-{os.getuid()}"


def test_a_directory_others_may_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(PermissionError):
        ReplayStore(shared / "r.sqlite3").seen_before("a", 1)


def test_a_locked_file_refuses_instead_of_accepting(tmp_path, monkeypatch):
    """Another connection holding the write lock past the busy timeout: the typed error, not a 500."""
    monkeypatch.setattr(replay, "BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "r.sqlite3"
    store = ReplayStore(path)
    store.seen_before("warm", 60)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ReplayStoreUnavailableError):
            store.seen_before("k", 60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not store.seen_before("k", 60)


# --- [replay] redis_url: the config --------------------------------------------------------------


@pytest.mark.parametrize("url", ["redis://cache:6379/0", "rediss://user:pw@cache.internal:6380/2",
                                 "redis://127.0.0.1", "unix:///run/redis/redis.sock"])
def test_a_redis_url_is_accepted(url):
    assert parse_config({"replay": {"redis_url": url}}).replay.redis_url == url


@pytest.mark.parametrize("table,says", [
    ({"redis_url": "http://cache:6379"}, "[replay]: redis_url must be redis://"),
    ({"redis_url": "redis://"}, "[replay]: redis_url must be redis://"),
    ({"redis_url": "redis://cache:99999/0"}, "[replay]: redis_url: Port out of range"),
    ({"redis_url": "redis://cache:6379/zero"}, "[replay]: redis_url: the path is a database number"),
    ({"redis_url": "redis://cache", "path": "/var/lib/r.sqlite3"}, "set one store, not both"),
    ({"redis_url": 6379}, "[replay] redis_url: expected a string"),
    ({"redis_timeout_s": 0}, "[replay] redis_timeout_s: expected a number > 0.0"),
    ({"redis_timeout_s": 30}, "[replay] redis_timeout_s: expected a number <= 5"),
    ({"redis": "redis://cache"}, "[replay] redis: unknown key"),
])
def test_a_bad_replay_table_is_refused_in_one_line(table, says):
    with pytest.raises(ConfigError) as caught:
        parse_config({"replay": table})
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_store_is_the_file_unless_a_redis_url_is_set(tmp_path):
    assert isinstance(open_replay_store(parse_config({"replay": {"path": str(tmp_path / "r")}}).replay), ReplayStore)
    store = open_replay_store(parse_config({"replay": {"redis_url": "redis://:secret@cache:6379/1",
                                                       "redis_timeout_s": 0.1}}).replay)
    assert isinstance(store, RedisReplayStore)
    assert store.where == "redis://cache:6379/1"  # what logs and errors name: never the password
    store.close()


def test_every_dialect_with_single_use_signatures_answers_its_retryable_error():
    """A ShuttingDownError: each dialect's error table already answers it (myqcloud 202 内部链接失败,
    Alibaba 503 ServiceUnavailable), without a line of its own."""
    assert myqcloud.error_code_for(ReplayStoreUnavailableError("x")) == 202
    assert alibaba.error_code_for(ReplayStoreUnavailableError("x")) == "ServiceUnavailable"


# --- RedisReplayStore against a real redis-server ------------------------------------------------

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (Debian: apt-get install redis-server)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server on a free loopback port, nothing saved to disk."""

    def __init__(self, workdir, port: int | None = None):
        self.workdir, self.port = workdir, port or _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "redis-server exited at start"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def redis_server(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def stores(redis_server):
    """stores(n) -> n RedisReplayStores on the test's server, as n gateways would hold; closed after."""
    made: list[RedisReplayStore] = []

    def make(n: int = 1, **kwargs) -> list[RedisReplayStore]:
        new = [RedisReplayStore(redis_server.url, **kwargs) for _ in range(n)]
        made.extend(new)
        return new

    yield make
    for store in made:
        store.close()


@needs_redis
def test_redis_a_key_is_new_once_then_seen(stores):
    (store,) = stores()
    assert not store.seen_before("a", 10)
    assert store.seen_before("a", 10) and store.seen_before("a", 10)
    assert not store.seen_before("b", 10)


@needs_redis
def test_redis_keys_are_prefixed_and_expire_on_their_own(stores, redis_server):
    (store,) = stores()
    assert not store.seen_before("myqcloud:abc", 0.3)
    assert store._client.pttl("cardgate:replay:myqcloud:abc") in range(1, 301)
    time.sleep(0.45)
    assert not store.seen_before("myqcloud:abc", 0.3)  # expired: a new use, for a new ttl
    assert store.seen_before("myqcloud:abc", 0.3)
    assert not store.seen_before("tiny", 0.0001)  # a ttl under a millisecond is still one


@needs_redis
def test_redis_two_machines_racing_on_one_key_see_it_first_once(stores):
    """Two stores (two gateways' clients), four threads each, let go together on each of 50 keys."""
    first, second = stores(2)
    threads_per_store, keys = 4, [f"race:{i}" for i in range(50)]
    outcomes: dict[str, list[bool]] = {key: [] for key in keys}
    lock = threading.Lock()
    barrier = threading.Barrier(2 * threads_per_store)

    def claim(store: RedisReplayStore) -> None:
        for key in keys:
            barrier.wait()
            seen = store.seen_before(key, 60)
            with lock:
                outcomes[key].append(seen)

    threads = [threading.Thread(target=claim, args=(store,)) for store in (first, second)
               for _ in range(threads_per_store)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(sorted(seen) == [False] + [True] * (2 * threads_per_store - 1) for seen in outcomes.values())


@needs_redis
def test_redis_down_refuses_with_the_typed_error_then_recovers(stores, redis_server, monkeypatch):
    monkeypatch.setattr(replay, "REDIS_RETRY_AFTER_S", 0.2)
    (store,) = stores(timeout_s=0.2)
    assert not store.seen_before("before", 60)
    redis_server.stop()
    for key in ("before", "new"):  # neither a replay nor a new key is accepted: nothing can be ruled out
        with pytest.raises(ReplayStoreUnavailableError):
            store.seen_before(key, 60)
    redis_server.start()  # the same port: the pooled connection is dead, a new one is made
    time.sleep(0.25)
    assert not store.seen_before("after", 60)
    assert store.seen_before("after", 60)


@needs_redis
def test_redis_failing_refuses_at_once_for_a_while(stores, redis_server, monkeypatch):
    """After a failure the store does not wait on Redis again for REDIS_RETRY_AFTER_S: a Redis that
    does not answer holds the event loop for one timeout a second, not one per request."""
    (store,) = stores(timeout_s=0.2)
    redis_server.stop()
    with pytest.raises(ReplayStoreUnavailableError):
        store.seen_before("a", 60)
    calls = []
    monkeypatch.setattr(store._client, "set", lambda *a, **k: calls.append(a))
    with pytest.raises(ReplayStoreUnavailableError, match="down, not retried yet"):
        store.seen_before("a", 60)
    assert calls == []


@needs_redis
def test_redis_that_does_not_answer_times_out_quickly(tmp_path):
    """A listening socket that never replies (a hung Redis): refused within about the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = RedisReplayStore(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout_s=0.2)
        started = time.monotonic()
        with pytest.raises(ReplayStoreUnavailableError, match="Timeout"):
            store.seen_before("a", 60)
        assert time.monotonic() - started < 1.5
        store.close()


# --- through the app: a myqcloud single-use signature, two gateways sharing one Redis ---------------

APPID, SECRET_ID, SECRET_KEY = "1250000000", "AKIDMYQ", "myq-secret-key"
NUMBER = "6225760088888883"
CARD_B64 = base64.b64encode(fake_card_image(NUMBER)).decode()


def single_use_sign(nonce: int) -> str:
    """A myqcloud e=0 (single-use) signature, as hand-written clients build it."""
    plain = f"a={APPID}&b=test&k={SECRET_ID}&e=0&t={int(time.time())}&r={nonce}&f=card.jpg"
    digest = hmac.new(SECRET_KEY.encode(), plain.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest + plain.encode()).decode()


def gateways(url: str, n: int = 2, **replay_table):
    config = {"myqcloud": {"apps": {APPID: {"secret_id": SECRET_ID, "secret_key": SECRET_KEY}}},
              "replay": {"redis_url": url, "redis_timeout_s": 0.2, **replay_table}}
    return [create_app(config, FakeEngine(make_reading(NUMBER)), allow_unsigned=False) for _ in range(n)]


def post(client: TestClient, sign: str) -> dict:
    body = {"appid": APPID, "bucket": "test", "image": CARD_B64}
    response = client.post("/ocr/bankcard", json=body, headers={"Authorization": sign})
    assert response.status_code == 200
    return response.json()


@needs_redis
def test_a_signature_accepted_by_one_machine_is_a_replay_on_the_other(redis_server):
    first, second = gateways(redis_server.url)
    sign = single_use_sign(81)
    with TestClient(first) as one, TestClient(second) as other:
        assert post(one, sign)["code"] == 0
        codes = [post(other, sign)["code"] for _ in range(5)] + [post(one, sign)["code"] for _ in range(5)]
        assert codes == [13] * 10  # 重放攻击
        assert post(other, single_use_sign(82))["code"] == 0


@needs_redis
def test_redis_down_refuses_signed_requests_through_the_app(redis_server, monkeypatch):
    monkeypatch.setattr(replay, "REDIS_RETRY_AFTER_S", 0.0)
    (app,) = gateways(redis_server.url, 1)
    accepted = single_use_sign(83)
    with TestClient(app) as client:
        assert post(client, accepted)["code"] == 0
        redis_server.stop()
        for sign in (accepted, single_use_sign(84)):  # a replay and a new one alike: refused, retryable
            answer = post(client, sign)
            assert (answer["code"], answer["message"]) == (202, myqcloud.ERRORS["202"].message)
        redis_server.start()  # back (empty: this one saves nothing), and the gateway with it
        assert post(client, single_use_sign(85))["code"] == 0


# --- through the app: an Alibaba ACS3 nonce, two gateways sharing one Redis -------------------------

ALI_AK, ALI_SECRET = "LTAIcardgateREPLAY00001", "alibaba-replay-secret"
ALI_OTHER_AK, ALI_OTHER_SECRET = "LTAIcardgateREPLAY00002", "alibaba-other-secret"


def alibaba_gateways(url: str, n: int = 2):
    config = {"alibaba": {"credentials": {ALI_AK: ALI_SECRET, ALI_OTHER_AK: ALI_OTHER_SECRET}},
              "replay": {"redis_url": url, "redis_timeout_s": 0.2}}
    return [create_app(config, FakeEngine(make_reading(NUMBER)), allow_unsigned=False) for _ in range(n)]


def alibaba_post(client: TestClient, nonce: str, ak: str = ALI_AK, secret: str = ALI_SECRET):
    """RecognizeBankCard with the photo as the body, signed (ACS3) as the Alibaba SDK signs it."""
    body = fake_card_image(NUMBER)
    headers = {"host": "testserver", "x-acs-action": "RecognizeBankCard", "x-acs-version": "2021-07-07",
               "x-acs-date": alibaba_auth.acs_date(time.time()), "x-acs-signature-nonce": nonce,
               "content-type": "application/octet-stream"}
    return client.post("/", content=body, headers=alibaba_auth.sign(ak, secret, "POST", "/", "", headers, body))


@needs_redis
def test_an_alibaba_nonce_used_on_one_machine_is_refused_on_the_other(redis_server):
    first, second = alibaba_gateways(redis_server.url)
    with TestClient(first) as one, TestClient(second) as other:
        accepted = alibaba_post(one, "nonce-shared-0001")
        assert accepted.status_code == 200, accepted.text
        assert json.loads(accepted.json()["Data"])["data"]["cardNumber"] == NUMBER
        for client in (other, one, other):  # freshly signed each time: only the nonce is reused
            refused = alibaba_post(client, "nonce-shared-0001")
            assert (refused.status_code, refused.json()["Code"]) == (400, "SignatureNonceUsed")
        # a nonce is single-use per AccessKeyId, and a new nonce goes through on either machine
        assert alibaba_post(other, "nonce-shared-0001", ALI_OTHER_AK, ALI_OTHER_SECRET).status_code == 200
        assert alibaba_post(other, "nonce-shared-0002").status_code == 200
        assert alibaba_post(one, "nonce-shared-0002").json()["Code"] == "SignatureNonceUsed"


def test_compose_replicas_share_the_redis_service_compose_starts():
    """compose.yaml runs several gateway containers: the config it gives them (the example) points
    [replay] redis_url at its redis service, which the gateways wait for and which never evicts."""
    from pathlib import Path

    import yaml

    from gateway.config import load_config

    root = Path(__file__).resolve().parent.parent
    services = yaml.safe_load((root / "compose.yaml").read_text())["services"]
    url = load_config(str(root / "deploy" / "cardgate.example.toml")).replay.redis_url
    assert url == "redis://redis:6379/0" and "redis" in services
    assert services["gateway"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["redis"]["image"].startswith("redis:7.")
    command = services["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"  # full: refuse, never forget live keys
