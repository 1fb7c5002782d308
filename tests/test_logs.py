"""Logs: one JSON object per line on stderr for everything the process writes, or text ([log] format)."""
from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.logs import JsonFormatter, TextFormatter

REPO = Path(__file__).resolve().parent.parent
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def record(msg="GET /x %s", args=(200,), fields=None, exc_info=None, name="cardgate.access") -> logging.LogRecord:
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, exc_info)
    rec.created = 1796288193.25  # 2026-12-03T08:56:33.250Z
    if fields is not None:
        rec.fields = fields
    return rec


def test_a_json_line_carries_time_level_logger_message_and_the_fields():
    line = JsonFormatter().format(record(fields={"request_id": "r1", "status": 200, "message": "not this"}))
    assert "\n" not in line
    assert json.loads(line) == {"time": "2026-12-03T08:56:33.250Z", "level": "INFO", "logger": "cardgate.access",
                                "message": "GET /x 200", "request_id": "r1", "status": 200}


def test_a_trace_stays_inside_its_json_line():
    try:
        raise KeyError("boom")
    except KeyError:
        line = JsonFormatter().format(record("failed", (), exc_info=sys.exc_info()))
    assert len(line.splitlines()) == 1
    assert "KeyError: 'boom'" in json.loads(line)["exception"]


def test_text_lines_for_a_terminal():
    line = TextFormatter().format(record(fields={"request_id": "r1", "error": None, "status": 200}))
    assert line == "2026-12-03T08:56:33.250Z INFO cardgate.access: GET /x 200 request_id=r1 status=200"


def test_the_log_format_is_a_config_key(tmp_path):
    path = tmp_path / "cardgate.toml"
    path.write_text('[log]\nformat = "text"\n')
    assert load_config(str(path)).log.format == "text"
    assert load_config(None).log.format == "json"
    path.write_text('[log]\nformat = "xml"\n')
    with pytest.raises(ConfigError, match=r'\[log\] format: expected one of "json", "text", got "xml"'):
        load_config(str(path))


def run_python(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stdout == ""
    return result.stderr.splitlines()


def test_httpx_warnings_and_a_crash_are_json_lines_too():
    lines = run_python("""
        import warnings
        import httpx
        from gateway.logs import configure_logging
        configure_logging("INFO", "json")
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        httpx.Client(transport=transport).get("http://127.0.0.1:9/upstream")
        warnings.warn("something is off")
        raise RuntimeError("crashed")
    """)
    objects = [json.loads(line) for line in lines]  # every line parses
    assert [o["logger"] for o in objects] == ["httpx", "py.warnings", "cardgate"]
    assert objects[0]["level"] == "INFO" and "http://127.0.0.1:9/upstream" in objects[0]["message"]
    assert "something is off" in objects[1]["message"]
    assert objects[2]["level"] == "CRITICAL" and "RuntimeError: crashed" in objects[2]["exception"]
    assert all(RFC3339_UTC.fullmatch(o["time"]) for o in objects)


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def serve(*options: str) -> list[str]:
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", *options], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    return result.stderr.splitlines()


def test_serve_writes_json_lines_by_default(taken_port, tmp_path):
    path = tmp_path / "cardgate.toml"
    path.write_text("[log]\nlevel = \"INFO\"\n")
    (line,) = serve("--port", str(taken_port), "--config", str(path))
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "cardgate.cli" and RFC3339_UTC.fullmatch(entry["time"])
    assert entry["message"] == f"cannot listen on 127.0.0.1:{taken_port}: address already in use (another gateway?)"


def test_serve_writes_text_lines_when_configured(taken_port, tmp_path):
    path = tmp_path / "cardgate.toml"
    path.write_text('[log]\nformat = "text"\n')
    (line,) = serve("--port", str(taken_port), "--config", str(path))
    time, rest = line.split(" ", 1)
    assert RFC3339_UTC.fullmatch(time)
    assert rest == f"ERROR cardgate.cli: cannot listen on 127.0.0.1:{taken_port}: address already in use (another gateway?)"
