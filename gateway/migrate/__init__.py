"""Migration testing: shadow traffic to the real vendor, and offline comparison reports.

    wire.py      what travels: WireRequest (to send), Reply (what came back), Outcome (comparable fields)
    vendors/     one module per dialect, client side: sign a request for an upstream, read its answer
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

Nothing outside vendors/ names a vendor.
"""
