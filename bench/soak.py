"""Soak: overload a gateway for N minutes with good and failing requests; print memory per worker.

    python -m bench.soak --minutes 5 --workers 2                 # starts its own gateway
    python -m bench.soak --url http://127.0.0.1:8080 --pid PID --config cardgate.toml --minutes 5

Without --url it starts `cardgate serve` on a free loopback port with --workers and a config of
its own (example credentials for every vendor, so that signed requests and auth failures are
both real), waits for /readyz, and stops it with SIGTERM at the end, reporting how long the
drain took and any traceback or ERROR line in its log. With --url it drives that gateway, signing
with the first key of each vendor in --config, and reads memory from the process tree of --pid.

The load: --concurrency clients (default 24, well past what two workers answer) loop over the
dialects; each request reads one of the photos (--images DIR, else synthetic ones with distinct
numbers), or, one time in --bad-share, is one that must fail: a wrong key, bad base64, a photo
that is not a card, bytes that are not an image. Every --interval seconds one line: requests,
answers read, busy answers, other failures, unexpected 5xx, crossed answers and failing
requests answered with a reading so far, and VmRSS of each worker (/proc/<pid>/status). After the load, --settle seconds more of memory lines
with no load, then a summary against issue #18's bars: peak RSS per worker under 700 MiB, RSS
at the end within 50 MiB of the start, 0 crossed answers, 0 unexpected 5xx.

Crossed answers: before the load, each photo is read once on its own (the calibration); under
load, a read of a photo whose calibrated number is known and unique must give that number, in
every dialect. Unexpected 5xx: a 5xx that is not the vendor's documented retryable answer, or a
connection the gateway dropped. Exit status 1 when a bar is not met. Not a test: for operators.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.clients import BUSY_CODES, DIALECTS, Credentials, answered_number, build_request, outcome
from bench.run import load_images, process_tree

PEAK_BAR_MIB = 700
END_BAR_MIB = 50
# 5xx answers a vendor documents as "try again"; any other 5xx is a failure of the gateway.
RETRYABLE_5XX = {("huawei", "ModelArts.4403"), ("alibaba", "ServiceUnavailable"), ("alibaba", "algorithmError"),
                 ("facepp", "INTERNAL_ERROR")}

# The gateway this script starts: one key per vendor (the README's examples).
CONFIG_TOML = """
[tencent.credentials]
AKIDEXAMPLE = "tencent-secret-key"
[huawei.credentials]
HWAKEXAMPLE = "huawei-secret-key"
[facepp.credentials]
fpp-api-key = "fpp-api-secret"
[myqcloud.apps.1250000000]
secret_id = "AKIDMYQ"
secret_key = "myq-secret-key"
[hex]
token = "hex-token"
[baidu.apps.12345678]
access_key = "baidu-ak"
secret_access_key = "baidu-sk"
[alibaba.credentials]
LTAIEXAMPLE = "alibaba-access-key-secret"
[replay]
path = "{replay}"
"""


# --- the gateway ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gateway(workers: int, folder: str) -> tuple[subprocess.Popen, str, str, str]:
    """`cardgate serve` on a free loopback port: (process, url, config path, log path)."""
    config = os.path.join(folder, "soak.toml")
    with open(config, "w") as fh:
        fh.write(CONFIG_TOML.replace("{replay}", os.path.join(folder, "replay.sqlite3")))
    port = free_port()
    log_path = os.path.join(folder, "gateway.log")
    command = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(workers), "--config", config]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}", config, log_path


def wait_ready(url: str, process: subprocess.Popen | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"soak: the gateway exited ({process.returncode}) before it was ready")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"soak: {url}/readyz not ready after {timeout_s:.0f} s")


def workers_of(pid: int) -> list[int]:
    """The processes that serve: the spawned workers of a --workers N supervisor, else `pid` itself."""
    tree = process_tree(pid)
    spawned = [p for p in tree[1:] if b"spawn_main" in _cmdline(p)]
    return spawned or [pid]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


# --- requests ------------------------------------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    read: int = 0  # a good request answered with a number
    busy: int = 0
    failed: int = 0  # every other refusal (the bad requests' and the engine's)
    unexpected_5xx: int = 0
    dropped: int = 0  # transport errors: the gateway closed or reset the connection
    crossed: int = 0
    accepted: int = 0  # a request that had to fail was answered with a reading
    codes: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)  # the first few crossed or 5xx answers, for the report


def bad_request(kind: int, dialect: str, photo: bytes, creds: Credentials, wrong: Credentials, host: str):
    """A request that must fail, of one of four kinds."""
    if kind == 0:  # a key the gateway does not know (or a wrong signature)
        return build_request(dialect, photo, wrong, host)
    if kind == 1:  # not an image
        return build_request(dialect, b"\xff\xd8\xff\xe0 not a JPEG at all " + os.urandom(2048), creds, host)
    if kind == 2:  # an image with no card: a flat grey JPEG
        return build_request(dialect, _grey_jpeg(), creds, host)
    method, path, headers, body = build_request(dialect, photo, creds, host)
    if dialect == "alibaba":  # the body is the image: one that is not an image any more
        return method, path, headers, b"\x00\x00" + body[2:]
    # The image field no longer base64 ('@' is not in its alphabet), in a JSON or form body.
    body = re.sub(rb'("[A-Za-z]*[Ii]mage[A-Za-z0-9]*": "|\bimage(?:_base64)?=)', rb"\1%40%40", body, count=1)
    return method, path, headers, body


_GREY: list[bytes] = []


def _grey_jpeg() -> bytes:
    if not _GREY:
        import cv2
        import numpy as np

        _GREY.append(cv2.imencode(".jpg", np.full((600, 900, 3), 128, np.uint8))[1].tobytes())
    return _GREY[0]


def wrong_credentials(creds: Credentials) -> Credentials:
    """Every key of `creds` with a wrong secret: each signed dialect's auth failure."""
    def spoil(pair):
        return None if pair is None else (*pair[:-1], pair[-1] + "-wrong")

    return Credentials(tencent=spoil(creds.tencent), huawei=spoil(creds.huawei), facepp=spoil(creds.facepp),
                       myqcloud=None if creds.myqcloud is None else (*creds.myqcloud[:2], "wrong", creds.myqcloud[3]),
                       hex_token=spoil(creds.hex_token), baidu=spoil(creds.baidu), alibaba=spoil(creds.alibaba),
                       baidu_token="24.forged.2592000.1.1-1" if creds.baidu_token else None)


async def calibrate(client: httpx.AsyncClient, photos: list[bytes], creds: Credentials, host: str) -> dict[int, str]:
    """photo index -> the number the gateway reads from it alone, for the photos read to a number
    no other photo reads to (the only ones a crossed answer can be told by)."""
    numbers: dict[int, str] = {}
    for i, photo in enumerate(photos):
        method, path, headers, body = build_request("hex", photo, creds, host)
        response = await client.request(method, path, headers=headers, content=body)
        number = answered_number("hex", response.status_code, response.content)
        if number:
            numbers[i] = number
    counts = Counter(numbers.values())
    return {i: n for i, n in numbers.items() if counts[n] == 1}


async def drive(url: str, photos: list[bytes], known: dict[int, str], creds: Credentials, concurrency: int,
                seconds: float, bad_share: float, tally: Tally, seed: int) -> None:
    host = url.split("://", 1)[1].rstrip("/")
    wrong = wrong_credentials(creds)
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one_client() -> None:
            while time.monotonic() < deadline:
                dialect = rng.choice(DIALECTS)
                index = rng.randrange(len(photos))
                good = rng.random() >= bad_share
                if good:
                    method, path, headers, body = build_request(dialect, photos[index], creds, host)
                else:
                    method, path, headers, body = bad_request(rng.randrange(4), dialect, photos[index], creds, wrong, host)
                tally.sent += 1
                try:
                    response = await client.request(method, path, headers=headers, content=body)
                except httpx.HTTPError as exc:
                    tally.dropped += 1
                    tally.codes[f"{dialect}:{type(exc).__name__}"] += 1
                    continue
                judge(tally, dialect, good, index, known, response.status_code, response.content)

        await asyncio.gather(*(one_client() for _ in range(concurrency)))


def judge(tally: Tally, dialect: str, good: bool, index: int, known: dict[int, str], status: int, body: bytes) -> None:
    ok, code = outcome(dialect, status, body)
    if status >= 500 and (dialect, code) not in RETRYABLE_5XX:
        tally.unexpected_5xx += 1
        if len(tally.examples) < 5:
            tally.examples.append(f"{dialect} {status} {body[:120]!r}")
    if ok:
        number = answered_number(dialect, status, body)
        if not good:
            tally.accepted += 1
            if len(tally.examples) < 5:
                tally.examples.append(f"{dialect}: a request that had to fail read {_masked(number)}")
        elif index in known and number != known[index]:
            tally.crossed += 1
            if len(tally.examples) < 5:
                tally.examples.append(f"{dialect}: photo {index} read {_masked(number)}, alone {_masked(known[index])}")
        else:
            tally.read += 1
    elif code in BUSY_CODES.get(dialect, ()):
        tally.busy += 1
    else:
        tally.failed += 1
        tally.codes[f"{dialect}:{code}"] += 1


def _masked(number: str | None) -> str:
    """Card numbers are payment data: first 6 and last 4 only, as everywhere else."""
    if not number:
        return "nothing"
    return number[:6] + "*" * max(0, len(number) - 10) + number[-4:]


# --- the run -------------------------------------------------------------------------------------


def sample(workers: list[int]) -> dict[int, float]:
    return {pid: rss for pid in workers if (rss := rss_mib(pid)) is not None}


def line(started: float, tally: Tally, memory: dict[int, float], phase: str) -> str:
    rss = "  ".join(f"{pid}:{mib:7.1f}" for pid, mib in sorted(memory.items()))
    return (f"{time.monotonic() - started:7.1f}s {phase:6} sent {tally.sent:6}  read {tally.read:6}  busy {tally.busy:6}  "
            f"failed {tally.failed:5}  5xx {tally.unexpected_5xx}  dropped {tally.dropped}  crossed {tally.crossed}  "
            f"accepted {tally.accepted}  "
            f"RSS MiB {rss}")


async def soak(args, url: str, pid: int | None, creds: Credentials, photos: list[bytes]) -> tuple[Tally, dict, dict, dict]:
    host = url.split("://", 1)[1].rstrip("/")
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        known = await calibrate(client, photos, creds, host)
    print(f"calibration: {len(known)} of {len(photos)} photos read alone to a number no other photo gives", flush=True)
    workers = workers_of(pid) if pid else []
    first = sample(workers)
    peak, last = dict(first), dict(first)
    tally = Tally()
    started = time.monotonic()
    print(line(started, tally, first, "start"), flush=True)
    load = asyncio.create_task(drive(url, photos, known, creds, args.concurrency, args.minutes * 60, args.bad_share, tally, args.seed))
    settle_until = None
    while True:
        await asyncio.sleep(args.interval)
        last = sample(workers)
        for p, mib in last.items():
            peak[p] = max(peak.get(p, 0.0), mib)
        if load.done() and settle_until is None:
            load.result()  # a failure of the load generator itself ends the run here
            settle_until = time.monotonic() + args.settle
        print(line(started, tally, last, "load" if settle_until is None else "idle"), flush=True)
        if settle_until is not None and time.monotonic() >= settle_until:
            return tally, first, peak, last


def stop_gateway(process: subprocess.Popen, log_path: str) -> None:
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(120)
        print(f"gateway: SIGTERM to exit in {time.monotonic() - stopped:.1f} s, exit status {code}")
    except subprocess.TimeoutExpired:
        process.kill()
        print("gateway: still running 120 s after SIGTERM; killed")
    with open(log_path, "rb") as fh:
        text = fh.read().decode("utf-8", "replace")
    bad = [ln for ln in text.splitlines() if "Traceback" in ln or '"level": "ERROR"' in ln or '"level":"ERROR"' in ln]
    print(f"gateway log: {len(text.splitlines())} lines, {len(bad)} with a traceback or at ERROR ({log_path})")
    for ln in bad[:5]:
        print("   ", ln[:300])


def report(tally: Tally, first: dict, peak: dict, last: dict) -> bool:
    print(f"requests {tally.sent}: read {tally.read}, busy {tally.busy}, other refusals {tally.failed}, "
          f"unexpected 5xx {tally.unexpected_5xx}, dropped {tally.dropped}, crossed {tally.crossed}, "
          f"failing requests answered with a reading {tally.accepted}")
    if tally.codes:
        print("refusals by dialect:code:", dict(tally.codes.most_common(12)))
    for example in tally.examples:
        print("   ", example)
    met = tally.crossed == tally.accepted == tally.unexpected_5xx == tally.dropped == 0
    for pid in sorted(first):
        start, top, end = first[pid], peak.get(pid, 0.0), last.get(pid, float("nan"))
        ok = top < PEAK_BAR_MIB and abs(end - start) <= END_BAR_MIB
        met &= ok
        print(f"worker {pid}: RSS start {start:.1f} MiB, peak {top:.1f}, end {end:.1f} ({end - start:+.1f}): "
              f"{'ok' if ok else 'NOT MET'} (peak < {PEAK_BAR_MIB}, end within {END_BAR_MIB} of start)")
    if not first:
        print("memory: not read (give --pid with --url)")
    print("bars:", "met" if met else "NOT MET")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--url", help="a running gateway (default: start one)")
    parser.add_argument("--pid", type=int, help="with --url: the gateway's process id, for memory per worker")
    parser.add_argument("--config", metavar="TOML", help="with --url: the gateway's config, for its credentials")
    parser.add_argument("--workers", type=int, default=2, help="workers of the gateway started")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the load lasts")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds of memory lines after the load")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between lines")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--bad-share", type=float, default=0.3, help="share of requests that must fail")
    parser.add_argument("--images", metavar="DIR", help="photos to read (default: synthetic ones)")
    parser.add_argument("--photos", type=int, default=12, help="synthetic photos, without --images")
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for /readyz")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args(argv)

    if args.images:
        photos = [data for _, data in load_images(args.images, 200)]
    else:
        from engine.benchmark import synthetic_photos

        photos = synthetic_photos(args.photos, seed=args.seed)
    if not photos:
        parser.error(f"no photos under {args.images}")
    with tempfile.TemporaryDirectory(prefix="cardgate-soak-") as folder:
        process = log_path = None
        if args.url:
            url, pid, config = args.url.rstrip("/"), args.pid, args.config
        else:
            process, url, config, log_path = start_gateway(args.workers, folder)
            pid = process.pid
            print(f"gateway: pid {pid} on {url}, {args.workers} worker(s), log {log_path}", flush=True)
        try:
            wait_ready(url, process, args.ready_timeout)
            creds = Credentials()
            if config:
                with open(config, "rb") as fh:
                    creds = Credentials.from_config(tomllib.load(fh))
            tally, first, peak, last = asyncio.run(soak(args, url, pid, creds, photos))
        finally:
            if process is not None:
                stop_gateway(process, log_path)
        return 0 if report(tally, first, peak, last) else 1


if __name__ == "__main__":
    sys.exit(main())
