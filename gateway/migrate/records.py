"""Where comparison records go: a JSONL file (default) or an SQLite database, and reading them back.

The path picks the format: `.sqlite`, `.sqlite3` or `.db` is SQLite, anything
else JSONL (one record per line, appended). Records are already masked
(gateway.migrate.fields); this module only stores them.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading

SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def is_sqlite(path: str) -> bool:
    return path.lower().endswith(SQLITE_SUFFIXES)


class JsonlRecorder:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)

    def close(self) -> None:
        pass


class SqliteRecorder:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS comparisons ("
            " seq INTEGER PRIMARY KEY, time REAL, dialect TEXT, id TEXT, agree INTEGER, record TEXT)"
        )
        self._db.commit()

    def write(self, record: dict) -> None:
        agree = record.get("agree")
        row = (record.get("time"), record.get("dialect"), record.get("id"), None if agree is None else int(agree),
               json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        with self._lock:
            self._db.execute("INSERT INTO comparisons (time, dialect, id, agree, record) VALUES (?, ?, ?, ?, ?)", row)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_recorder(path: str):
    return SqliteRecorder(path) if is_sqlite(path) else JsonlRecorder(path)


def load_records(path: str) -> list[dict]:
    """Every record in a JSONL file or SQLite database, oldest first. Unreadable lines are skipped."""
    if is_sqlite(path):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT record FROM comparisons ORDER BY seq").fetchall()
        finally:
            db.close()
        return [json.loads(text) for (text,) in rows]
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: the rest still counts
            if isinstance(record, dict):
                records.append(record)
    return records
