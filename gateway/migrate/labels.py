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

from gateway.migrate.wire import Outcome, mask, normalize_expiry

CARD_KINDS = ("full_card", "")


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


def truth_record(label: Label) -> dict:
    return {"number": mask(label.number), "expiry": normalize_expiry(label.expiry) or None}


def score(outcome: Outcome, label: Label) -> dict[str, bool | None]:
    """number / expiry right? expiry None when the label has none."""
    expiry = normalize_expiry(label.expiry) if label.expiry else None
    return {
        "number": bool(label.number) and outcome.number == label.number,
        "expiry": None if expiry is None else outcome.expiry == expiry,
    }
