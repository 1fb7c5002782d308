"""labels.tsv: the truth for a set of images, and scoring an answer against it.

Format (the one realcards-dev/labels.tsv uses): a TSV with a header and the
columns file, kind, card_number, expiry; `file` is relative to the TSV's
folder. Only `full_card` rows (or rows without a kind) are whole card photos;
other kinds (number segments, line crops) are not sent to a card API.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

from core.wire import Outcome, mask, normalize_expiry

CARD_KINDS = ("full_card", "")
COLUMNS = ("file", "kind", "card_number", "expiry")
REQUIRED_COLUMNS = ("file", "card_number")


class LabelsError(ValueError):
    """What is wrong with a labels file, in one line."""


@dataclass(frozen=True)
class Label:
    path: str  # absolute
    kind: str
    number: str
    expiry: str  # "" when the card shows none (or it was not labelled)


def load_labels(tsv_path: str) -> dict[str, Label]:
    """Absolute image path -> Label, whole card photos only."""
    root = os.path.dirname(os.path.abspath(tsv_path))
    labels: dict[str, Label] = {}
    with open(tsv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            kind = (row.get("kind") or "").strip()
            if kind not in CARD_KINDS or not row.get("file"):
                continue
            path = os.path.abspath(os.path.join(root, row["file"]))
            labels[path] = Label(path, kind, (row.get("card_number") or "").strip(), (row.get("expiry") or "").strip())
    return labels


def check_labels(tsv_path: str) -> None:
    """LabelsError unless `tsv_path` is a readable labels TSV whose card photos all exist.

    Run before anything is read or sent, so that a wrong file is one line, not a trace
    half-way through (or a silently empty set).
    """
    try:
        with open(tsv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except OSError as exc:
        raise LabelsError(f"cannot read labels {tsv_path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LabelsError(f"{tsv_path}: not UTF-8 text") from None
    header = [name.strip() for name in rows[0]] if rows else []
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        comma = len(header) == 1 and "," in header[0]
        raise LabelsError(
            f"{tsv_path}: {'looks comma-separated' if comma else 'no ' + ' or '.join(missing) + ' column'}: "
            f"labels are tab-separated, with a header line naming the columns {', '.join(COLUMNS)}"
        )
    root = os.path.dirname(os.path.abspath(tsv_path))
    absent, cards, other_kinds = [], 0, set()
    for line, row in enumerate(rows[1:], 2):
        fields = dict(zip(header, row))
        kind = (fields.get("kind") or "").strip()
        if kind in CARD_KINDS and fields.get("file"):
            cards += 1
            if not os.path.isfile(os.path.join(root, fields["file"])):
                absent.append((line, fields["file"]))
        elif kind:
            other_kinds.add(kind)
    if not cards:  # else a silently empty set: every figure 0, exit 0
        found = f"; kinds in it: {', '.join(sorted(other_kinds))}" if other_kinds else ""
        raise LabelsError(f"{tsv_path}: no card photos labelled (rows of kind full_card, or no kind){found}")
    if absent:
        (line, name), more = absent[0], len(absent) - 1
        raise LabelsError(f"{tsv_path} line {line}: no image {name} in {root}" + (f" (and {more} more missing)" if more else ""))


def truth_record(label: Label) -> dict:
    return {"number": mask(label.number), "expiry": normalize_expiry(label.expiry) or None}


def score(outcome: Outcome, label: Label) -> dict[str, bool | None]:
    """number / expiry right? expiry None when the label has none."""
    expiry = normalize_expiry(label.expiry) if label.expiry else None
    return {
        "number": bool(label.number) and outcome.number == label.number,
        "expiry": None if expiry is None else outcome.expiry == expiry,
    }
