"""Drive a running gateway with concurrent clients and print what it can take.

    cardgate serve --config cardgate.toml --workers 2 &
    python -m bench.run --url http://127.0.0.1:8080 --images DIR --concurrency 8 --seconds 20 \
        --config cardgate.toml --pid $!

Each client loops: take the next (dialect, image) pair round robin, build the real request
body of that dialect (signed with the first key of each vendor in --config; unsigned when a
vendor has none, which a loopback gateway accepts), send it, time it. Printed:

  * latency p50/p95/p99, throughput, error rate: overall and per dialect; "busy" counts each
    vendor's own rate-limit answer (the engine queue was full), kept apart from other errors;
  * engine time and server overhead: from the gateway's Server-Timing header when
    [metrics] server_timing = true (per request: end-to-end latency minus engine queue wait and
    engine time), and from the /metrics overhead histogram (the server's own cost, before/after);
  * peak resident memory per worker process: /proc of --pid and its children, else the
    process_peak_resident_memory_bytes gauge of whichever worker answered /metrics;
  * with --rapidocr (needs rapidocr_onnxruntime), RapidOCR on the same images in this process,
    one at a time, and its speed relative to the gateway's engine time.

Images: every .jpg/.jpeg/.png/.bmp under --images (recursively), up to --max-images, each
at most 2 MB (every dialect's limit). Not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from bench.clients import BUSY_CODES, DIALECTS, Credentials, build_request, outcome
from engine.machine import cpu_description

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MAX_IMAGE_BYTES = 2 * 1024 * 1024 - 4096


def load_images(folder: str, limit: int) -> list[tuple[str, bytes]]:
    images = []
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stat().st_size <= MAX_IMAGE_BYTES:
            images.append((str(path), path.read_bytes()))
            if len(images) >= limit:
                break
    return images


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[index]


def server_timing(header: str | None) -> dict[str, float]:
    timings = {}
    for part in (header or "").split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name and duration:
            try:
                timings[name] = float(duration)
            except ValueError:
                pass
    return timings


# --- /metrics ------------------------------------------------------------------------------------


def scrape(client: httpx.Client) -> dict:
    from gateway.metrics import parse_text

    try:
        response = client.get("/metrics", timeout=5)
        return parse_text(response.text) if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}


def _sum_series(metrics: dict, name: str, **labels) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and wanted <= set(ls))


def histogram_quantile(before: dict, after: dict, name: str, q: float) -> float:
    """The q-quantile (0..1) of the observations between two scrapes, interpolated inside buckets."""
    buckets: dict[float, float] = defaultdict(float)
    for (n, labels), value in after.items():
        if n == f"{name}_bucket":
            le = float(dict(labels)["le"])
            buckets[le] += value - before.get((n, labels), 0.0)
    if not buckets:
        return float("nan")
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return float("nan")
    rank, previous_bound, previous_count = q * total, 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            span = count - previous_count
            return previous_bound + (bound - previous_bound) * ((rank - previous_count) / span if span else 1.0)
        previous_bound, previous_count = bound, count
    return bounds[-1]


# --- memory ------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children[ppid].append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def peak_rss_mib(pid: int) -> dict[int, float]:
    """VmHWM (peak resident set) of `pid` and every descendant, MiB."""
    peaks = {}
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peaks[member] = int(line.split()[1]) / 1024.0
        except OSError:
            continue
    return peaks


# --- the load ------------------------------------------------------------------------------------


class Result:
    __slots__ = ("dialect", "latency_ms", "ok", "code", "timing")

    def __init__(self, dialect, latency_ms, ok, code, timing):
        self.dialect, self.latency_ms, self.ok, self.code, self.timing = dialect, latency_ms, ok, code, timing


async def drive(url: str, pairs: list[tuple[str, bytes]], creds: Credentials, concurrency: int, seconds: float) -> tuple[list[Result], float]:
    host = url.split("://", 1)[1].rstrip("/")
    results: list[Result] = []
    counter = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                dialect, image = pairs[counter % len(pairs)]
                counter += 1
                method, path, headers, body = build_request(dialect, image, creds, host)
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, headers=headers, content=body)
                    latency = (time.perf_counter() - started) * 1000.0
                    ok, code = outcome(dialect, response.status_code, response.content)
                    timing = server_timing(response.headers.get("server-timing"))
                except httpx.HTTPError as exc:
                    latency, ok, code, timing = (time.perf_counter() - started) * 1000.0, False, type(exc).__name__, {}
                results.append(Result(dialect, latency, ok, code, timing))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return results, elapsed


def summarize(results: list[Result], elapsed: float) -> dict:
    latencies = [r.latency_ms for r in results]
    busy = sum(1 for r in results if not r.ok and r.code in BUSY_CODES.get(r.dialect, ()))
    failed = sum(1 for r in results if not r.ok)
    summary = {
        "requests": len(results),
        "ok": len(results) - failed,
        "busy": busy,
        "errors": failed - busy,
        "error_rate": round(failed / len(results), 4) if results else None,
        "throughput_rps": round(len(results) / elapsed, 2) if elapsed else None,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "codes": dict(Counter(r.code for r in results if not r.ok).most_common(6)),
    }
    timed = [r for r in results if "engine" in r.timing]
    if timed:
        engine = [r.timing["engine"] for r in timed]
        overhead = [r.latency_ms - r.timing["engine"] - r.timing.get("queue", 0.0) - r.timing.get("fetch", 0.0) for r in timed]
        in_server = [r.timing["app"] - r.timing["engine"] - r.timing.get("queue", 0.0) - r.timing.get("fetch", 0.0) for r in timed if "app" in r.timing]
        summary.update(
            engine_p50_ms=round(percentile(engine, 50), 1),
            engine_mean_ms=round(statistics.fmean(engine), 1),
            queue_p50_ms=round(percentile([r.timing.get("queue", 0.0) for r in timed], 50), 1),
            overhead_end_to_end_p50_ms=round(percentile(overhead, 50), 2),
            overhead_end_to_end_p95_ms=round(percentile(overhead, 95), 2),
            overhead_in_server_p95_ms=round(percentile(in_server, 95), 2) if in_server else None,
        )
    return summary


def rapidocr_seconds_per_image(images: list[tuple[str, bytes]], count: int) -> float | None:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR()
    sample = [data for _, data in images[:count]]
    engine(sample[0])  # warm-up
    started = time.perf_counter()
    for data in sample:
        engine(data)
    return (time.perf_counter() - started) / len(sample)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--images", required=True, metavar="DIR")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--dialects", default=",".join(DIALECTS), help="comma-separated, default all")
    parser.add_argument("--config", metavar="TOML", help="the gateway's config: credentials to sign with")
    parser.add_argument("--pid", type=int, help="gateway process id: peak memory of it and its workers from /proc")
    parser.add_argument("--max-images", type=int, default=200)
    parser.add_argument("--rapidocr", action="store_true", help="also time RapidOCR on the same images (if installed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)

    images = load_images(args.images, args.max_images)
    if not images:
        parser.error(f"no images under {args.images}")
    dialects = [d.strip() for d in args.dialects.split(",") if d.strip()]
    unknown = set(dialects) - set(DIALECTS)
    if unknown:
        parser.error(f"unknown dialects: {', '.join(sorted(unknown))}")
    creds = Credentials()
    if args.config:
        with open(args.config, "rb") as fh:
            creds = Credentials.from_config(tomllib.load(fh))
    pairs = [(dialect, data) for _, data in images for dialect in dialects]

    with httpx.Client(base_url=args.url) as client:
        ready = client.get("/readyz", timeout=5)
        if ready.status_code != 200:
            print(f"bench: {args.url}/readyz answered {ready.status_code}", file=sys.stderr)
            return 1
        before = scrape(client)
        results, elapsed = asyncio.run(drive(args.url, pairs, creds, args.concurrency, args.seconds))
        after = scrape(client)

    report = {
        "url": args.url,
        "cpu": cpu_description(),
        "images": len(images),
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 1),
        "overall": summarize(results, elapsed),
        "per_dialect": {d: summarize([r for r in results if r.dialect == d], elapsed) for d in dialects},
    }
    if after:
        engine_count = _sum_series(after, "cardgate_stage_duration_seconds_count", stage="engine") - _sum_series(
            before, "cardgate_stage_duration_seconds_count", stage="engine")
        engine_sum = _sum_series(after, "cardgate_stage_duration_seconds_sum", stage="engine") - _sum_series(
            before, "cardgate_stage_duration_seconds_sum", stage="engine")
        report["server_metrics"] = {
            "note": "one worker's registry when --workers > 1",
            "engine_reads": int(engine_count),
            "engine_mean_ms": round(1000 * engine_sum / engine_count, 1) if engine_count else None,
            "overhead_p50_ms": round(1000 * histogram_quantile(before, after, "cardgate_overhead_seconds", 0.50), 2),
            "overhead_p95_ms": round(1000 * histogram_quantile(before, after, "cardgate_overhead_seconds", 0.95), 2),
            "peak_rss_mib": round(_sum_series(after, "process_peak_resident_memory_bytes") / 2**20, 1),
        }
    if args.pid:
        report["peak_rss_mib_per_process"] = {str(p): round(v, 1) for p, v in peak_rss_mib(args.pid).items()}
    if args.rapidocr:
        per_image = rapidocr_seconds_per_image(images, min(20, len(images)))
        engine_ms = report["overall"].get("engine_mean_ms") or (report.get("server_metrics") or {}).get("engine_mean_ms")
        if per_image is None:
            report["rapidocr"] = "not installed (pip install rapidocr_onnxruntime)"
        else:
            report["rapidocr"] = {
                "ms_per_image": round(per_image * 1000, 1),
                "speed_ratio_vs_engine": round(per_image * 1000 / engine_ms, 2) if engine_ms else None,
            }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_report(report)
    return 0


def print_report(report: dict) -> None:
    print(f"{report['url']}: {report['images']} images, concurrency {report['concurrency']}, {report['seconds']} s; cpu: {report['cpu']}")
    header = f"{'dialect':10} {'reqs':>6} {'ok':>6} {'busy':>5} {'err':>5} {'rps':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'engine':>7} {'ovh95':>7}"
    print(header)
    rows = [("ALL", report["overall"])] + list(report["per_dialect"].items())
    for name, s in rows:
        print(
            f"{name:10} {s['requests']:>6} {s['ok']:>6} {s['busy']:>5} {s['errors']:>5} {s['throughput_rps'] or 0:>7} "
            f"{s['p50_ms']:>7} {s['p95_ms']:>7} {s['p99_ms']:>7} {s.get('engine_mean_ms', '-'):>7} "
            f"{s.get('overhead_end_to_end_p95_ms', '-'):>7}"
        )
    print("(ms; engine = mean engine time, ovh95 = p95 of latency minus engine and queue time, from Server-Timing)")
    for name, s in rows[:1]:
        if s["codes"]:
            print(f"error codes: {s['codes']}")
        if "overhead_in_server_p95_ms" in s:
            print(f"server overhead p95 inside the server: {s['overhead_in_server_p95_ms']} ms; "
                  f"end to end incl. HTTP client and loopback: {s['overhead_end_to_end_p95_ms']} ms")
    if "server_metrics" in report:
        print(f"/metrics: {json.dumps(report['server_metrics'])}")
    if "peak_rss_mib_per_process" in report:
        print(f"peak RSS per process (MiB): {report['peak_rss_mib_per_process']}")
    if "rapidocr" in report:
        print(f"rapidocr: {report['rapidocr']}")


if __name__ == "__main__":
    sys.exit(main())
