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

import httpx

from gateway.migrate import vendors
from gateway.migrate.fields import comparison_record
from gateway.migrate.labels import Label, LabelsError, check_labels, load_labels, score, truth_record
from gateway.migrate.progress import Progress
from gateway.migrate.report import write_report
from gateway.migrate.upstream import send
from gateway.migrate.wire import Outcome, Reply

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
SIDES = ("a", "b")


def find_images(paths: list[str]) -> list[str]:
    """Files as given, and the images under each folder (sorted), without duplicates."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
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
    progress: Progress | None = None,
    base_dir: str | None = None,
    thumbnails: dict[str, str] | None = None,
) -> list[dict]:
    """One record per image, in the order given."""
    client = vendors.client_for(dialect)
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
                progress.advance(record_id)
            return record

    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        return list(await asyncio.gather(*(one(path, http) for path in images)))


def run(args) -> int:
    """The `cardgate compare` subcommand."""
    try:
        credentials = load_credentials(args.credentials)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"cardgate compare: cannot read credentials {args.credentials}: {exc}", file=sys.stderr)
        return 2
    for side in SIDES:
        missing = vendors.missing_settings(args.dialect, credentials[side])
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
    images = find_images(paths)
    if not images:
        print("cardgate compare: no images given or found", file=sys.stderr)
        return 2
    progress = Progress(len(images), label="compare")
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
    title = f"cardgate compare ({args.dialect}): a = {args.a}, b = {args.b}"
    json_path, html_path = write_report(args.out, records, title, thumbnails)
    agree = sum(1 for r in records if r["agree"])
    print(f"{len(records)} images, all fields agree on {agree}; report: {html_path} and {json_path}", file=sys.stderr)
    return 0
