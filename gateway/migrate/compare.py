"""`cardgate compare`: every image through two endpoints in one dialect's wire format, then a report.

Each image is sent, signed, to side "a" and side "b" at the same time; both
answers are read with that dialect's client module and compared field by field
(gateway.migrate.fields). With labels, each side is also scored against the
truth. The report (report.json + report.html in --out) never shows a full card
number; thumbnails of the images only with --thumbnails.

Credentials file (TOML): keys at the top level apply to both sides, tables [a]
and [b] to one side, in the dialect's terms (the same keys as [<dialect>.shadow]):

    [a]
    secret_id = "AKID..."
    secret_key = "..."
    [b]
    secret_id = "AKIDOTHER"
    secret_key = "..."
"""
from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
import tomllib
from collections import Counter
from urllib.parse import urlsplit

import httpx
from tqdm import tqdm

from adapters import migrate as clients
from gateway.migrate.fields import comparison_record
from gateway.migrate.labels import Label, LabelsError, check_labels, load_labels, score, truth_record
from gateway.migrate.report import write_report
from gateway.migrate.upstream import send
from core.wire import Outcome, Reply

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
SIDES = ("a", "b")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a side's base URL, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{url!r} is not an http(s) URL (e.g. http://127.0.0.1:8080)"
    return None


def find_images(paths: list[str], missing: list[str] | None = None) -> list[str]:
    """Files as given, and the images under each folder (sorted), without duplicates.

    With `missing`, the paths that do not exist go there instead.
    """
    found: list[str] = []
    for path in paths:
        if missing is not None and not os.path.exists(path):
            missing.append(path)
        elif os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, name) for name in sorted(files) if name.lower().endswith(IMAGE_EXTS)]
        else:
            found.append(path)
    seen: set[str] = set()
    return [p for p in found if not (os.path.abspath(p) in seen or seen.add(os.path.abspath(p)))]


def load_credentials(path: str | None) -> dict[str, dict]:
    """{"a": {...}, "b": {...}} from the credentials file (empty tables without one)."""
    if not path:
        return {side: {} for side in SIDES}
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    shared = {k: v for k, v in data.items() if not isinstance(v, dict)}
    return {side: {**shared, **(data.get(side) or {})} for side in SIDES}


def thumbnail(image: bytes, width: int = 160) -> str | None:
    """A small JPEG data URI of the image, or None when it cannot be decoded."""
    try:
        import cv2
        import numpy as np

        decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            return None
        height = max(1, int(decoded.shape[0] * width / decoded.shape[1]))
        ok, jpeg = cv2.imencode(".jpg", cv2.resize(decoded, (width, height), interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, 70])
        return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode() if ok else None
    except Exception:
        return None


async def _side(client, http: httpx.AsyncClient, image: bytes, url: str, settings: dict, timeout_s: float) -> tuple[Outcome, Reply]:
    try:
        wire = client.request_for_image(image, url, settings, time.time())
    except Exception as exc:
        reply = Reply(status=None, failure=f"build: {type(exc).__name__}")
        return Outcome(failure=reply.failure), reply
    reply = await send(http, wire, timeout_s)
    if reply.failure:
        return Outcome(failure=reply.failure), reply
    try:
        return client.outcome(reply), reply
    except Exception as exc:
        return Outcome(failure=f"unreadable answer ({type(exc).__name__})"), reply


async def compare_images(
    dialect: str,
    urls: dict[str, str],
    credentials: dict[str, dict],
    images: list[str],
    labels: dict[str, Label] | None = None,
    concurrency: int = 4,
    timeout_s: float = 30.0,
    progress: tqdm | None = None,
    base_dir: str | None = None,
    thumbnails: dict[str, str] | None = None,
) -> list[dict]:
    """One record per image, in the order given."""
    client = clients.client_for(dialect)
    gate = asyncio.Semaphore(max(1, concurrency))
    base_dir = base_dir or os.getcwd()

    async def one(path: str, http: httpx.AsyncClient) -> dict:
        async with gate:
            record_id = os.path.relpath(os.path.abspath(path), base_dir)
            try:
                with open(path, "rb") as fh:
                    image = fh.read()
            except OSError as exc:
                failed = Reply(status=None, failure=f"unreadable file ({exc.strerror})")
                sides = [(side, Outcome(failure=failed.failure), failed) for side in SIDES]
                record = comparison_record(dialect, "compare", record_id, sides)
            else:
                results = await asyncio.gather(
                    *(_side(client, http, image, urls[side], credentials[side], timeout_s) for side in SIDES)
                )
                sides = [(side, outcome, reply) for side, (outcome, reply) in zip(SIDES, results)]
                extra = {}
                label = (labels or {}).get(os.path.abspath(path))
                if label is not None:
                    extra["truth"] = truth_record(label)
                    extra["scores"] = {side: score(outcome, label) for side, outcome, _ in sides}
                record = comparison_record(dialect, "compare", record_id, sides, **extra)
                if thumbnails is not None:
                    uri = thumbnail(image)
                    if uri:
                        thumbnails[record_id] = uri
            if progress is not None:
                progress.set_postfix_str(record_id[-40:], refresh=False)
                progress.update(1)
            return record

    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        return list(await asyncio.gather(*(one(path, http) for path in images)))


def side_answers(records: list[dict], side: str) -> Counter:
    """How each of the side's answers ended: "read", a vendor error code, or why none came back."""
    answers: Counter = Counter()
    for record in records:
        data = record["sides"][side]
        answers[data.get("failure") or data.get("error_code") or "read"] += 1
    return answers


def side_line(side: str, url: str, answers: Counter) -> str:
    """side b (127.0.0.1:8081): 0 of 3 read; connect 3"""
    total, read = sum(answers.values()), answers["read"]
    others = "; ".join(f"{reason} {n}" for reason, n in answers.most_common() if reason != "read")
    host = urlsplit(url).netloc.rpartition("@")[2]  # never a password given in the URL
    return f"side {side} ({host}): {read} of {total} read" + (f"; {others}" if others else "")


def run(args) -> int:
    """The `cardgate compare` subcommand. Exit 1 when a side read none of the images."""
    for side, url in (("a", args.a), ("b", args.b)):
        problem = url_problem(url)
        if problem:
            print(f"cardgate compare: --{side} {problem}", file=sys.stderr)
            return 2
    try:
        credentials = load_credentials(args.credentials)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"cardgate compare: cannot read credentials {args.credentials}: {exc}", file=sys.stderr)
        return 2
    for side in SIDES:
        missing = clients.missing_settings(args.dialect, credentials[side])
        if missing:
            print(f"cardgate compare: side {side} needs {', '.join(missing)} in --credentials", file=sys.stderr)
            return 2
    labels = None
    if args.labels:
        try:
            check_labels(args.labels)
        except LabelsError as exc:
            print(f"cardgate compare: {exc}", file=sys.stderr)
            return 2
        labels = load_labels(args.labels)
    paths = list(args.paths) or ([label.path for label in labels.values()] if labels else [])
    missing: list[str] = []
    images = find_images(paths, missing)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        print(f"cardgate compare: {missing[0]}: no such file or folder{more}", file=sys.stderr)
        return 2
    if not images:
        print("cardgate compare: no images given or found", file=sys.stderr)
        return 2
    progress = tqdm(total=len(images), desc="compare", unit="image", file=sys.stderr, disable=not sys.stderr.isatty())
    thumbnails: dict[str, str] | None = {} if args.thumbnails else None
    records = asyncio.run(
        compare_images(
            args.dialect,
            {"a": args.a, "b": args.b},
            credentials,
            images,
            labels=labels,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
            progress=progress,
            base_dir=os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in images]),
            thumbnails=thumbnails,
        )
    )
    progress.close()
    title = f"cardgate compare ({args.dialect}): a = {args.a}, b = {args.b}"
    json_path, html_path = write_report(args.out, records, title, thumbnails)
    urls = {"a": args.a, "b": args.b}
    answers = {side: side_answers(records, side) for side in SIDES}
    for side in SIDES:
        print(side_line(side, urls[side], answers[side]), file=sys.stderr)
    blind = [side for side in SIDES if not answers[side]["read"]]
    if blind:
        # Nothing to compare: a side that is down, refuses the signature or is not this dialect.
        print(f"cardgate compare: side {' and '.join(blind)} read none of the {len(records)} images; "
              f"report: {html_path} and {json_path}", file=sys.stderr)
        return 1
    agree = sum(1 for r in records if r["agree"])
    print(f"{len(records)} images, all fields agree on {agree}; report: {html_path} and {json_path}", file=sys.stderr)
    return 0
