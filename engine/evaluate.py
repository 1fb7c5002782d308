"""Score the engine on a labelled set, and scan folders of images.

Labels: a TSV with columns file, kind, card_number, expiry (the format of
realcards-dev/labels.tsv); `file` is relative to the TSV's folder. Only
`full_card` rows are read by the engine (segments and line crops are not cards).

Used by `cardgate eval LABELS.tsv` and `cardgate scan PATH...`.
"""
from __future__ import annotations

import csv
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import bin_tables
from engine.errors import EngineError, NumberUnreadableError
from engine.types import ReadOptions

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def progress(i: int, n: int, label: str = "") -> None:
    """A one-line progress bar on stderr, only for interactive runs of many images."""
    if n < 5 or not sys.stderr.isatty():
        return
    width = 30
    done = int(width * i / n)
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} {label[:40]:40s}")
    if i == n:
        sys.stderr.write("\n")
    sys.stderr.flush()


@dataclass
class Outcome:
    file: str
    truth: str
    expiry_truth: str
    number: str | None = None
    expiry: str | None = None
    error: str | None = None
    stages: dict = field(default_factory=dict)


def run_labels(engine, labels_path: str, options: ReadOptions = ReadOptions()) -> list[Outcome]:
    root = os.path.dirname(os.path.abspath(labels_path))
    with open(labels_path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r.get("kind", "full_card") == "full_card"]
    out = []
    for i, row in enumerate(rows, 1):
        progress(i, len(rows), row["file"])
        o = Outcome(row["file"], row["card_number"], row.get("expiry", "") or "")
        with open(os.path.join(root, row["file"]), "rb") as f:
            data = f.read()
        try:
            r = engine.read(data, options)
            o.number, o.expiry, o.stages = r.number, r.expiry.text if r.expiry else None, r.timings_ms
        except EngineError as exc:
            o.error = type(exc).__name__
        out.append(o)
    return out


def edit_distance(pred: str, truth: str) -> int:
    """Levenshtein distance: digit errors of a read, insertions and deletions included."""
    prev = list(range(len(truth) + 1))
    for i, a in enumerate(pred, 1):
        cur = [i]
        for j, b in enumerate(truth, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1]


def summarize(outcomes: list[Outcome]) -> dict:
    n = len(outcomes)
    read = [o for o in outcomes if o.number is not None]
    exact = sum(o.number == o.truth for o in read)
    wrong_valid = sum(o.number != o.truth and bin_tables.luhn_valid(o.number) for o in read)
    wrong_any = sum(o.number != o.truth for o in read)
    digit_err = sum(edit_distance(o.number or "", o.truth) for o in outcomes)
    labelled = [o for o in outcomes if o.expiry_truth]
    unlabelled = [o for o in outcomes if not o.expiry_truth]
    stages = {}
    for o in read:
        for k, v in o.stages.items():
            stages.setdefault(k, []).append(v)
    by_length = {}
    for o in outcomes:
        by_length.setdefault(len(o.truth), []).append(o.number == o.truth)
    return {
        "images": n,
        "exact_number": round(exact / max(n, 1), 4),
        "digit_error_rate": round(digit_err / max(sum(len(o.truth) for o in outcomes), 1), 4),
        "abstain_rate": round(sum(o.error == NumberUnreadableError.__name__ for o in outcomes) / max(n, 1), 4),
        "errors": {e: sum(o.error == e for o in outcomes) for e in sorted({o.error for o in outcomes if o.error})},
        "wrong_but_luhn_valid": wrong_valid,
        "wrong_answers": wrong_any,
        "expiry_exact_where_labelled": round(sum(o.expiry == o.expiry_truth for o in labelled) / max(len(labelled), 1), 4),
        "expiry_labelled": len(labelled),
        "expiry_wrong_where_labelled": sum(o.expiry is not None and o.expiry != o.expiry_truth for o in labelled),
        "expiry_invented_where_unlabelled": sum(o.expiry is not None for o in unlabelled),
        "exact_by_length": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_length.items())},
        "median_ms": {k: round(statistics.median(v), 1) for k, v in stages.items()},
    }


def evaluate(engine, labels_path: str) -> dict:
    outcomes = run_labels(engine, labels_path)
    luhn_valid = [o for o in outcomes if bin_tables.luhn_valid(o.truth)]
    return {
        "all_full_cards": summarize(outcomes),
        "luhn_valid_full_cards": summarize(luhn_valid),
        "failures": [
            {"file": o.file, "truth": mask(o.truth), "got": mask(o.number) if o.number else o.error}
            for o in luhn_valid
            if o.number != o.truth
        ],
    }


def not_card_false_accepts(engine, seed: int = 2) -> dict:
    """Run the engine on images with no bank card (desktop photos, documents, ID-card-like
    layouts from engine.eval_warnings.not_card_images): any card number read is a false accept."""
    import cv2
    import numpy as np

    from engine.eval_warnings import not_card_images

    images = not_card_images(np.random.default_rng(seed))
    accepted = []
    for i, img in enumerate(images, 1):
        progress(i, len(images), "not a card")
        try:
            engine.read(cv2.imencode(".jpg", img)[1].tobytes())
            accepted.append(i)
        except EngineError:
            pass
    return {"images": len(images), "false_accepts": len(accepted), "rate": round(len(accepted) / max(len(images), 1), 4)}


def mask(number: str | None) -> str | None:
    """First 6 + last 4: the most of a card number that may be shown or logged."""
    if not number:
        return number
    return number[:6] + "*" * max(0, len(number) - 10) + number[-4:] if len(number) > 10 else "*" * len(number)


def iter_images(paths: list[str]):
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                for name in sorted(files):
                    if name.lower().endswith(IMAGE_EXTS):
                        yield os.path.join(root, name)
        else:
            yield p


def scan(engine, paths: list[str], fmt: str = "jsonl", out=sys.stdout, show_full: bool = False) -> int:
    """One record per image: file, number, expiry, confidence, outline, ms, or the error."""
    files = list(iter_images(paths))
    writer = None
    for i, path in enumerate(files, 1):
        progress(i, len(files), os.path.basename(path))
        t = time.perf_counter()
        rec = {"file": path, "number": None, "expiry": None, "confidence": None, "outline": None, "ms": None, "error": None}
        try:
            with open(path, "rb") as f:
                r = engine.read(f.read())
            rec.update(number=r.number if show_full else mask(r.number), expiry=r.expiry.text if r.expiry else None,
                       confidence=r.number_confidence, outline=[list(p) for p in r.card_quad])
        except (EngineError, OSError) as exc:
            rec["error"] = type(exc).__name__
        rec["ms"] = round((time.perf_counter() - t) * 1000, 1)
        if fmt == "csv":
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(rec))
                writer.writeheader()
            writer.writerow({**rec, "outline": json.dumps(rec["outline"])})
        else:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return 0
