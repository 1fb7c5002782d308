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
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tqdm import tqdm

import bin_tables
from engine.errors import EngineError, ImageDecodeError, NumberUnreadableError
from engine.types import ReadOptions

CATEGORY_COLUMNS = ("embossed",)  # label columns whose values split the figures (realcards-dev2 has them)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def progress_bar(total: int):
    """A progress bar on stderr (tqdm), drawn only when stderr is a terminal: a log gets none."""
    return tqdm(total=total, unit="image", file=sys.stderr, disable=not sys.stderr.isatty(), dynamic_ncols=True)


_bar = None  # progress()'s bar, from its first step to its last


def progress(i: int, n: int, label: str = "") -> None:
    """Step i (from 1) of n of the progress bar, `label` beside it."""
    global _bar
    if i == 1 or _bar is None:
        _bar = progress_bar(n)
    _bar.set_postfix_str(label[:40], refresh=False)
    _bar.update(1)
    if i >= n:
        _bar.close()
        _bar = None


@dataclass
class Outcome:
    file: str
    truth: str
    expiry_truth: str
    number: str | None = None
    expiry: str | None = None
    error: str | None = None
    category: dict = field(default_factory=dict)  # e.g. {"embossed": "flat"} from the labels
    stages: dict = field(default_factory=dict)


def is_card_row(row: dict) -> bool:
    """A row naming a whole card photo: kind full_card, or no kind given (as `cardgate compare` counts)."""
    return bool(row.get("file")) and (row.get("kind") or "").strip() in ("full_card", "")


def run_labels(engine, labels_path: str, options: ReadOptions = ReadOptions()) -> list[Outcome]:
    root = os.path.dirname(os.path.abspath(labels_path))
    with open(labels_path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if is_card_row(r)]
    out = []
    for i, row in enumerate(rows, 1):
        progress(i, len(rows), row["file"])
        o = Outcome(row["file"], row["card_number"], row.get("expiry", "") or "")
        o.category = {k: row[k] for k in CATEGORY_COLUMNS if row.get(k)}
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
    # Over answered photos only: a refusal is not a photo of wrong digits.
    digit_err = sum(edit_distance(o.number, o.truth) for o in read)
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
        "digit_error_rate": round(digit_err / max(sum(len(o.truth) for o in read), 1), 4),
        "abstain_rate": round(sum(o.error == NumberUnreadableError.__name__ for o in outcomes) / max(n, 1), 4),
        "errors": {e: sum(o.error == e for o in outcomes) for e in sorted({o.error for o in outcomes if o.error})},
        "wrong_but_luhn_valid": wrong_valid,
        "wrong_answers": wrong_any,
        "expiry_exact_where_labelled": round(sum(o.expiry == o.expiry_truth for o in labelled) / max(len(labelled), 1), 4),
        "expiry_labelled": len(labelled),
        "expiry_wrong_where_labelled": sum(o.expiry is not None and o.expiry != o.expiry_truth for o in labelled),
        "expiry_invented_where_unlabelled": sum(o.expiry is not None for o in unlabelled),
        "exact_by_length": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_length.items())},
        "exact_by_category": _by_category(outcomes),
        "median_ms": {k: round(statistics.median(v), 1) for k, v in stages.items()},
    }


def _by_category(outcomes: list[Outcome]) -> dict:
    """{"embossed=flat": "13/14", ...}: exact numbers per value of each category column."""
    groups: dict[str, list[bool]] = {}
    for o in outcomes:
        for k, v in o.category.items():
            groups.setdefault(f"{k}={v}", []).append(o.number == o.truth)
    return {k: f"{sum(v)}/{len(v)}" for k, v in sorted(groups.items())}


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


def iter_images(paths: list[str], problems: list[str] | None = None):
    """The files given, and the images under each folder (sorted).

    With `problems`, a path that does not exist or a folder without images is
    described there instead of yielded.
    """
    for p in paths:
        if os.path.isdir(p):
            found = False
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(IMAGE_EXTS):
                        found = True
                        yield os.path.join(root, name)
            if not found and problems is not None:
                problems.append(f"{p}: no images in this folder ({', '.join(IMAGE_EXTS)})")
        elif problems is not None and not os.path.exists(p):
            problems.append(f"{p}: no such file or folder")
        else:
            yield p


SCAN_FIELDS = ("file", "number", "valid", "expiry", "bank", "card_kind", "network",
               "confidence", "warnings", "outline", "ms", "error")
INVALID_NUMBER = "invalid_number"  # read, but the number fails Luhn or its BIN's lengths: not an answer


def scan_one(engine, path: str, show_full: bool) -> tuple[dict, str | None]:
    """(record, problem): problem is a line saying why the file could not be read, else None."""
    started = time.perf_counter()
    rec = dict.fromkeys(SCAN_FIELDS)
    rec["file"] = path
    problem = None
    try:
        with open(path, "rb") as f:
            data = f.read()
        r = engine.read(data, ReadOptions())
    except OSError as exc:
        rec["error"] = type(exc).__name__
        problem = f"{path}: cannot read ({exc.strerror or exc})"
    except ImageDecodeError as exc:
        rec["error"] = type(exc).__name__
        problem = f"{path}: not an image that can be decoded ({str(exc) or type(exc).__name__})"
    except EngineError as exc:
        rec["error"] = type(exc).__name__
    else:
        bank = r.bank
        rec.update(
            number=r.number if show_full else mask(r.number),
            valid=r.number_valid,
            expiry=r.expiry.text if r.expiry else None,
            bank=bank.bank_name if bank else None,
            card_kind=bank.card_kind if bank else None,
            network=bank.network if bank else None,
            confidence=r.number_confidence,
            warnings=list(r.warnings),
            outline=[list(p) for p in r.card_quad],
            error=None if r.number_valid else INVALID_NUMBER,
        )
    rec["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return rec, problem


def csv_row(rec: dict) -> dict:
    """A record as CSV cells: nothing is an empty cell, lists and booleans as JSON writes them."""
    row = {}
    for key, value in rec.items():
        if value is None:
            row[key] = ""
        elif isinstance(value, (bool, list)):
            row[key] = json.dumps(value, ensure_ascii=False)
        else:
            row[key] = value
    return row


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def scan_summary(read: int, invalid: int, refused: Counter, unreadable: int, not_found: int = 0) -> str:
    """One line: what came of the images, and the paths given that held none."""
    total = read + invalid + sum(refused.values()) + unreadable
    line = f"{plural(total, 'image')}: {read} read, {invalid} invalid number, {sum(refused.values())} refused"
    if refused:
        line += " (" + ", ".join(f"{reason} {n}" for reason, n in sorted(refused.items())) + ")"
    line += f", {unreadable} unreadable"
    if not_found:
        line += f"; {plural(not_found, 'path')} missing or without images"
    return line


def scan(engine, paths: list[str], fmt: str = "jsonl", out=None, show_full: bool = False,
         jobs: int = 1, err=None) -> int:
    """One record per image (file, number, valid, expiry, bank, card_kind, network, confidence,
    warnings, outline, ms, error), then a summary line on `err`.

    Exit status 1 when any input could not be read (a missing path, a folder without images,
    a file that cannot be opened or decoded), each said in one line on `err`; else 0.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    problems: list[str] = []
    files = list(iter_images(paths, problems))
    for problem in problems:
        print(f"cardgate scan: {problem}", file=err)
    writer = None
    read = invalid = unreadable = 0
    refused: Counter = Counter()
    # Engine.read is thread-safe; map() yields in the order of `files`, whichever read ends first.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, progress_bar(len(files)) as bar:
        for rec, problem in pool.map(lambda path: scan_one(engine, path, show_full), files):
            bar.update(1)
            if problem:
                unreadable += 1
                bar.write(f"cardgate scan: {problem}", file=err)
            elif rec["error"] == INVALID_NUMBER:
                invalid += 1
            elif rec["error"]:
                refused[rec["error"]] += 1
            else:
                read += 1
            if fmt == "csv":
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=SCAN_FIELDS)
                    writer.writeheader()
                writer.writerow(csv_row(rec))
            else:
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"cardgate scan: {scan_summary(read, invalid, refused, unreadable, len(problems))}", file=err)
    return 1 if problems or unreadable else 0
