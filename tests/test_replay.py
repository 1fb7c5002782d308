"""gateway/replay.py: keys seen once, in one SQLite file every worker shares."""
from __future__ import annotations

import multiprocessing
import os
import stat

import pytest

from gateway.replay import PURGE_EVERY_S, ReplayStore, default_path


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
