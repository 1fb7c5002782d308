"""The `cardgate compare` and `cardgate report` subcommands (registered in gateway/cli.py)."""
from __future__ import annotations

import argparse
import sys

from adapters.migrate import CLIENTS
from gateway.arguments import images_in_flight, seconds


def add_compare_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="send images to two endpoints in one dialect's wire format and report where they differ",
    )
    parser.add_argument("--dialect", required=True, choices=list(CLIENTS))
    parser.add_argument("--a", required=True, metavar="URL", help="base URL of side a (e.g. the vendor)")
    parser.add_argument("--b", required=True, metavar="URL", help="base URL of side b (e.g. this gateway)")
    parser.add_argument("--credentials", metavar="FILE", help="TOML: [a] and [b] tables of the dialect's credential keys")
    parser.add_argument("--labels", metavar="LABELS.tsv", help="score each side against the truth (file, kind, card_number, expiry)")
    parser.add_argument("--out", metavar="DIR", default="cardgate-compare", help="where report.json and report.html go")
    parser.add_argument("--concurrency", type=images_in_flight, default=4, help="images in flight at once")
    parser.add_argument("--timeout", type=seconds, default=30.0, help="seconds per request")
    parser.add_argument("--thumbnails", action="store_true", help="embed image thumbnails in the HTML (they show the cards)")
    parser.add_argument("paths", nargs="*", metavar="IMAGES_OR_DIRS", help="default: the images of --labels")
    parser.set_defaults(func=compare_command)


def compare_command(args) -> int:
    from gateway.migrate.compare import run

    return run(args)


def add_report_command(subparsers) -> None:
    parser = subparsers.add_parser("report", help="render the comparison report of shadow-mode records")
    parser.add_argument("records", metavar="RECORDS", help="JSONL file or SQLite database ([shadow] records)")
    parser.add_argument("--out", metavar="DIR", default="cardgate-report", help="where report.json and report.html go")
    parser.add_argument("--dialect", help="only this dialect's records")
    parser.set_defaults(func=report_command)


def report_command(args) -> int:
    from gateway.migrate.records import is_sqlite, load_records
    from gateway.migrate.report import write_report

    try:
        records = load_records(args.records)
    except Exception as exc:  # missing file, not a database...
        print(f"cardgate report: cannot read {args.records}: {exc}", file=sys.stderr)
        return 2
    if not records and not is_sqlite(args.records) and _has_text(args.records):  # not a records file (a labels file, a log...)
        print(f"cardgate report: {args.records}: no comparison records in it (JSON lines or the SQLite "
              "database of [shadow] records)", file=sys.stderr)
        return 2
    if args.dialect:
        records = [r for r in records if r.get("dialect") == args.dialect]
    json_path, html_path = write_report(args.out, records, f"cardgate shadow report: {args.records}")
    print(f"{len(records)} records; report: {html_path} and {json_path}", file=sys.stderr)
    return 0


def _has_text(path: str) -> bool:
    """Whether the file holds anything but blank lines (a records file not written to yet has none)."""
    with open(path, "rb") as fh:
        return any(line.strip() for line in fh)
