"""Prometheus metrics, written by hand in the text exposition format (version 0.0.4).

Why not prometheus_client: the gateway needs three metric kinds with fixed
label sets and one process; a hundred lines here avoid a dependency and its
multiprocess mode. Each Hypercorn worker process has its own registry, so run
one worker per container (compose/k8s replicas) when the figures must add up.

What is recorded (see `GatewayMetrics`):

    cardgate_requests_total{dialect,status,code}        counter; code is the vendor's error code, "ok" on success
    cardgate_request_duration_seconds{dialect}          histogram, whole request inside the server
    cardgate_stage_duration_seconds{stage}              histogram: fetch, queue, engine, render and the engine's
                                                        own stages (decode, detect, locate, read, checks)
    cardgate_overhead_seconds{dialect}                  histogram: request time minus fetch, queue and engine time
    cardgate_engine_running / cardgate_engine_queued    gauges: engine reads running / waiting for a thread
    cardgate_engine_capacity{kind}                      gauges: threads and queue_size from the config
    cardgate_http_in_flight                             gauge: dialect requests being handled
    cardgate_draining                                   gauge: 1 once a graceful shutdown began
    process_*                                           resident and peak memory, CPU seconds, start time
"""
from __future__ import annotations

import math
import os
import re
import resource
import threading
import time
from typing import Callable, Iterable

# Seconds. Fine at the low end: server overhead is measured in milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Engine stage names are trusted code, but a label set must stay bounded.
MAX_STAGES = 24
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]):
        self.name, self.help, self.label_names = name, help_text, labels
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Histogram:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...], buckets=LATENCY_BUCKETS):
        self.name, self.help, self.label_names = name, help_text, labels
        self.buckets = tuple(buckets)
        # labels -> [per-bucket counts (not cumulative)..., +Inf count, sum]
        self._series: dict[tuple[str, ...], list[float]] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        index = len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                index = i
                break
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
            series[index] += 1
            series[-1] += value

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return int(sum(series[:-1])) if series else 0

    def series_labels(self) -> list[tuple[str, ...]]:
        return list(self._series)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            items = sorted((labels, list(series)) for labels, series in self._series.items())
        for labels, series in items:
            cumulative = 0.0
            for bound, count in zip(self.buckets + (math.inf,), series[:-1]):
                cumulative += count
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {_number(cumulative)}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {_number(series[-1])}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {_number(cumulative)}"


class Gauge:
    """A value read when scraped (`read` returns it), or set by hand."""

    def __init__(self, name: str, help_text: str, read: Callable[[], float] | None = None, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help_text, labels
        self.read = read
        self._values: dict[tuple[str, ...], float] = {}

    def set(self, value: float, *labels: str) -> None:
        self._values[labels] = value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        if self.read is not None:
            yield f"{self.name} {_number(self.read())}"
        for labels, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


# --- process figures (Linux /proc, with portable fallbacks) ---------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STARTED = time.time()


def resident_bytes() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return float(int(fh.read().split()[1]) * _PAGE)
    except (OSError, ValueError, IndexError):
        return peak_resident_bytes()


def peak_resident_bytes() -> float:
    # ru_maxrss is KiB on Linux: the high-water mark of this process.
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# --- the gateway's metrics --------------------------------------------------------------------


class GatewayMetrics:
    def __init__(self, runner=None):
        self.requests = Counter(
            "cardgate_requests_total",
            "Requests answered, by dialect, HTTP status and vendor error code (ok on success).",
            ("dialect", "status", "code"),
        )
        self.request_seconds = Histogram(
            "cardgate_request_duration_seconds", "Time from request start to response, inside the server.", ("dialect",)
        )
        self.stage_seconds = Histogram(
            "cardgate_stage_duration_seconds",
            "Time per stage: fetch, queue, engine, render, and the engine's own stages.",
            ("stage",),
        )
        self.overhead_seconds = Histogram(
            "cardgate_overhead_seconds",
            "Request time minus image fetch, engine queue wait and engine time: the server's own cost.",
            ("dialect",),
        )
        self.in_flight = 0
        self.draining = False
        self._lock = threading.Lock()
        self.runner = runner
        gauges = [
            Gauge("cardgate_http_in_flight", "Dialect requests being handled.", lambda: self.in_flight),
            Gauge("cardgate_draining", "1 once a graceful shutdown began.", lambda: 1 if self.draining else 0),
            Gauge("process_resident_memory_bytes", "Resident memory.", resident_bytes),
            Gauge("process_peak_resident_memory_bytes", "Peak resident memory (high-water mark).", peak_resident_bytes),
            Gauge("process_start_time_seconds", "Unix time the process started.", lambda: _STARTED),
        ]
        if runner is not None:
            gauges += [
                Gauge("cardgate_engine_running", "Engine reads running now.", lambda: runner.running),
                Gauge("cardgate_engine_queued", "Engine reads waiting for a thread.", lambda: runner.queued),
            ]
            capacity = Gauge("cardgate_engine_capacity", "Engine threads and queue size.", labels=("kind",))
            capacity.set(runner.threads, "threads")
            capacity.set(runner.queue_size, "queue")
            gauges.append(capacity)
        self._gauges = gauges
        self._cpu = Counter("process_cpu_seconds_total", "User and system CPU time.", ())
        self._stages_seen: set[str] = set()

    def request_started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def request_finished(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def observe_request(self, dialect: str, status: int, code: str, seconds: float, overhead: float | None) -> None:
        self.requests.inc(dialect, str(status), code)
        self.request_seconds.observe(seconds, dialect)
        if overhead is not None:
            self.overhead_seconds.observe(max(0.0, overhead), dialect)

    def observe_stage(self, stage: str, seconds: float) -> None:
        if stage not in self._stages_seen:
            if len(self._stages_seen) >= MAX_STAGES or not _STAGE_NAME.match(stage):
                return
            self._stages_seen.add(stage)
        self.stage_seconds.observe(seconds, stage)

    def observe_engine_timings(self, timings_ms: dict) -> None:
        """The engine's own per-stage times (CardReading.timings_ms); its "total" is recorded as "engine"."""
        for stage, ms in (timings_ms or {}).items():
            if stage == "total" or not isinstance(ms, (int, float)):
                continue
            self.observe_stage(str(stage), float(ms) / 1000.0)

    def render(self) -> str:
        self._cpu._values[()] = cpu_seconds()
        lines: list[str] = []
        for metric in (self.requests, self.request_seconds, self.stage_seconds, self.overhead_seconds, *self._gauges, self._cpu):
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_text(text: str) -> dict[tuple[str, frozenset], float]:
    """Samples of an exposition text: (name, frozenset of (label, value)) -> value. For tests and the bench."""
    samples: dict[tuple[str, frozenset], float] = {}
    pattern = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
    label_pattern = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = pattern.match(line)
        if not match:
            raise ValueError(f"not an exposition line: {line!r}")
        name, labels, value = match.groups()
        label_set = frozenset(label_pattern.findall(labels or ""))
        samples[(name, label_set)] = float(value.replace("+Inf", "inf"))
    return samples
