"""The process's log lines on stderr: one JSON object per line, or plain text ([log] format).

    {"time": "2026-12-03T08:36:33.123Z", "level": "INFO", "logger": "cardgate.access",
     "message": "POST / 200", "request_id": "...", "dialect": "tencent", ...}

Every logger goes through the root handler installed here: the gateway's own, Hypercorn's
and httpx's (shadow mode, image fetches), Python's warnings, and a crash's traceback, so a
log collector reading stderr never meets a line it cannot parse. A record's structured
fields (the access line's request fields) travel as `extra={"fields": {...}}` and become
keys of the object; they never replace time, level, logger or message.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

FORMATS = ("json", "text")


def rfc3339(timestamp: float) -> str:
    """UTC, milliseconds, Z: 2026-12-03T08:36:33.123Z"""
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_fields(record: logging.LogRecord) -> dict:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": rfc3339(record.created), "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key, value in record_fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """2026-12-03T08:36:33.123Z INFO cardgate.access: POST / 200 request_id=... dialect=tencent ..."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{rfc3339(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        fields = " ".join(f"{key}={value}" for key, value in record_fields(record).items() if value is not None)
        if fields:
            text += " " + fields
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


def log_handler(fmt: str = "json", stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    return handler


def configure_logging(level: str = "INFO", fmt: str = "json", stream=None) -> None:
    """Send every logger to stderr in `fmt`. Like logging.basicConfig, a root logger that
    already has handlers (a test's log capture) is left as it is."""
    logging.basicConfig(level=level.upper(), handlers=[log_handler(fmt, stream)])
    logging.captureWarnings(True)
    crash_log = logging.getLogger("cardgate")

    def log_crash(kind, value, traceback) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, traceback)
        else:
            crash_log.critical("uncaught %s", kind.__name__, exc_info=(kind, value, traceback))

    sys.excepthook = log_crash
