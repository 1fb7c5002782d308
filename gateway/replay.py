"""Keys seen once (single-use signatures, signature nonces), shared by every worker process.

With `--workers N` each worker is its own process: a set in memory would accept a replayed
signature once per worker. The store is one SQLite table in a file all workers open
(WAL mode: readers and one writer at a time, across processes), keyed by the dialect's own
key, each row kept until its TTL ends. Checking and recording is one statement, so two
workers racing on one key cannot both see it first.

    store = ReplayStore(path)             # "" -> default_path(); ":memory:" -> this process only
    store.seen_before("myqcloud:<digest>", ttl_s=300, now=now)   # False once, then True
"""
from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

PURGE_EVERY_S = 60.0  # expired rows are deleted at most this often (the check itself ignores them)
BUSY_TIMEOUT_MS = 2000  # another worker holding the write lock: wait this long before failing

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
            return db.execute(_CLAIM, (key, now + ttl_s, now)).rowcount == 0

    def __len__(self) -> int:
        with self._lock:
            return self._connect().execute("SELECT count(*) FROM seen").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
