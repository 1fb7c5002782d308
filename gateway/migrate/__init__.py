"""Migration testing: shadow traffic to the real vendor, and offline comparison reports.

    upstream.py  send a WireRequest with httpx, never raising
    fields.py    compare two Outcomes field by field into a masked record
    records.py   where shadow records go (JSONL or SQLite), and reading them back
    counters.py  agreement / upstream error / drop counters, Prometheus text
    mirror.py    the bounded queue of mirrored jobs (drops counted)
    shadow.py    shadow mode: answer from one side, mirror to the other
    report.py    summary + JSON + HTML report over records
    labels.py    labels.tsv reading and scoring against the truth
    compare.py   `cardgate compare`: every image through two endpoints
    commands.py  the `compare` and `report` subcommands

What travels (WireRequest, Reply, Outcome) is core/wire.py; the client side of each dialect
(sign a request for an upstream, read its answer) is adapters/migrate/<dialect>.py, found by
dialect name. Nothing here names a vendor.
"""
