"""Keys seen once (single-use signatures, signature nonces), shared by every worker process.

With `--workers N` each worker is its own process: a set in memory would accept a replayed
signature once per worker. The store is one SQLite table in a file all workers open
(WAL mode: readers and one writer at a time, across processes), keyed by the dialect's own
key, each row kept until its TTL ends. Checking and recording is one statement, so two
workers racing on one key cannot both see it first.

    store = ReplayStore(path)             # "" -> default_path(); ":memory:" -> this process only
    store.seen_before("myqcloud:<digest>", ttl_s=300, now=now)   # False once, then True

A file is shared by the workers of one machine only. Gateways on many machines set
`[replay] redis_url`: RedisReplayStore records each key in one Redis they all reach, with the
same interface, one atomic `SET <prefix><key> 1 NX PX <ttl_ms>` per check, so two machines
racing on one key cannot both see it first either; Redis expires the key itself.

When the store cannot answer (Redis unreachable or timing out, the SQLite file locked past its
busy timeout) seen_before raises ReplayStoreUnavailableError: a replay cannot be ruled out, so
the request is refused with the dialect's retryable temporary-failure error, never accepted.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from core.errors import ReplayStoreUnavailableError

PURGE_EVERY_S = 60.0  # expired rows are deleted at most this often (the check itself ignores them)
log = logging.getLogger("cardgate.replay")

BUSY_TIMEOUT_MS = 2000  # another worker holding the write lock: wait this long before failing
REDIS_PREFIX = "cardgate:replay:"  # every key this gateway writes to Redis starts with it
REDIS_RETRY_AFTER_S = 1.0  # after Redis failed, refuse at once for this long instead of waiting on it again

_SCHEMA = "CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID"
# Inserted, or an expired row taken over: one row changed. A live row (expires >= now): none.
_CLAIM = ("INSERT INTO seen (key, expires) VALUES (?, ?) "
          "ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE seen.expires < ?")


def default_path() -> Path:
    """$XDG_RUNTIME_DIR/cardgate/replay.sqlite3, else /tmp/cardgate-<uid>/replay.sqlite3."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "cardgate" if runtime else Path("/tmp") / f"cardgate-{os.getuid()}"
    return base / "replay.sqlite3"


def private_dir(path: Path) -> None:
    """Create `path` 0700, and refuse one that someone else owns or may write to: in /tmp another
    user could otherwise create it first and read or forge the replay table."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(f"{path}: not a directory of this user's, closed to others")


class SeenStore(Protocol):
    """What a dialect's use_replay_store(store) is given: ReplayStore or RedisReplayStore."""

    def seen_before(self, key: str, ttl_s: float, now: float | None = None) -> bool: ...

    def close(self) -> None: ...


class ReplayStore:
    def __init__(self, path: str | os.PathLike = ""):
        self.path = str(path) if str(path) else str(default_path())
        self._db: sqlite3.Connection | None = None  # opened on first use: most apps never need it
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path != ":memory:":
                private_dir(Path(self.path).parent)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # a lost last write on power loss: its signature expires soon anyway
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def seen_before(self, key: str, ttl_s: float, now: float | None = None) -> bool:
        """Record `key` for `ttl_s` seconds from `now`; True when it was already recorded and live."""
        now = time.time() if now is None else now
        with self._lock:
            db = self._connect()
            if now >= self._next_purge:
                self._next_purge = now + PURGE_EVERY_S
                db.execute("DELETE FROM seen WHERE expires < ?", (now,))
            try:
                return db.execute(_CLAIM, (key, now + ttl_s, now)).rowcount == 0
            except sqlite3.OperationalError as exc:  # locked past BUSY_TIMEOUT_MS, disk full, I/O
                raise ReplayStoreUnavailableError(f"replay file {self.path}: {exc}") from None

    def __len__(self) -> int:
        with self._lock:
            return self._connect().execute("SELECT count(*) FROM seen").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def check_redis_url(url: str) -> None:
    """ValueError unless `url` is one redis-py opens: redis://host[:port][/db], rediss://... (TLS)
    or unix:///path/to/socket, user and password in the URL as Redis ACLs take them."""
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss") and parts.hostname:
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError("redis_url: the path is a database number, e.g. redis://host:6379/0")
        try:
            parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
        except ValueError as exc:
            raise ValueError(f"redis_url: {exc}") from None
        return
    if parts.scheme == "unix" and parts.path:
        return
    raise ValueError("redis_url must be redis://host:port/db, rediss://host:port/db or unix:///path")


class RedisReplayStore:
    """Keys seen once, in one Redis every gateway reaches (`[replay] redis_url`).

    Each check is one `SET <prefix><key> 1 NX PX <ttl_ms>`: Redis sets the key only when it is
    absent, atomically, so of two gateways racing on one key exactly one is told it is new. The
    key expires on Redis's own clock after ttl_s (`now` is not used: Redis keeps the time).

    Redis unreachable, slow past `timeout_s`, or answering an error (wrong password, a read-only
    replica): ReplayStoreUnavailableError, and for REDIS_RETRY_AFTER_S after that every check
    fails at once, so that a Redis that does not answer holds the event loop for at most one
    timeout (and one reconnect) a second, not one per request. A connection dropped before the
    command was sent is retried once on a new one (a restarted Redis); a timeout is not retried, as
    the key may have been set: the safe side of that doubt is refusing, not accepting.
    """

    def __init__(self, url: str, timeout_s: float = 0.25, prefix: str = REDIS_PREFIX):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        check_redis_url(url)
        self.prefix = prefix
        self._errors = (redis.RedisError, OSError)
        self._down_until = 0.0
        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        # Where it is, without the password a URL may hold: for logs and errors.
        parts = urlsplit(url)
        self.where = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def seen_before(self, key: str, ttl_s: float, now: float | None = None) -> bool:
        """Record `key` for `ttl_s` seconds; True when it was already recorded and live."""
        if time.monotonic() < self._down_until:
            raise ReplayStoreUnavailableError(f"replay store {self.where}: down, not retried yet")
        ttl_ms = max(1, int(ttl_s * 1000 + 0.999))  # PX takes whole milliseconds > 0: round up
        try:
            created = self._client.set(self.prefix + key, b"1", nx=True, px=ttl_ms)
        except self._errors as exc:
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER_S
            reason = f"replay store {self.where}: {type(exc).__name__}: {exc}"
            log.warning("%s; requests that need it are refused for %.0f s", reason, REDIS_RETRY_AFTER_S)
            raise ReplayStoreUnavailableError(reason) from None
        return not created

    def close(self) -> None:
        self._client.close()


class ReplaySettings(Protocol):
    """What open_replay_store reads of the `[replay]` table (gateway.config.Replay)."""

    path: str
    redis_url: str
    redis_timeout_s: float


def open_replay_store(table: ReplaySettings) -> SeenStore:
    """The store `[replay]` names: Redis when redis_url is set, else the SQLite file at path."""
    if table.redis_url:
        return RedisReplayStore(table.redis_url, table.redis_timeout_s)
    return ReplayStore(table.path)
