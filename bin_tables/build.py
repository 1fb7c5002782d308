"""Compile the project's BIN table from ``../shared/data/bin`` into one committed file.

    python -m bin_tables.build [--shared ../shared/data/bin] [--out bin_tables/data/bins.json.gz]

Reads the shared TSVs at build time only; the package never reads ``../shared`` at run time.
The output is deterministic (sorted records, gzip with mtime 0 and no file name), so a
rebuild from the same inputs gives the same bytes. See ``bin_tables/README.md`` for the
rules applied here (they follow ``shared/data/bin/NOTES.md``).
"""
from __future__ import annotations

import argparse
import collections
import csv
import gzip
import hashlib
import io
import sys
from pathlib import Path

import msgspec

FORMAT = "cardgate-bin-table/1"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data" / "bins.json.gz"
DEFAULT_SHARED_CANDIDATES = (
    HERE.parent.parent / "shared" / "data" / "bin",  # ../shared next to the checkout
    Path("/work/shared/data/bin"),
)

MAIN = "cn_unionpay_cardbin_2018.tsv"
BCBC = "cn_bank_bin_bcbc_2020.tsv"
ALIPAY = "cn_bank_alipay_codes_bcbc.tsv"
NAMES_EN = "bank_names_en.tsv"
NETWORKS = "card_networks.tsv"
INPUTS = (MAIN, BCBC, ALIPAY, NAMES_EN, NETWORKS)

KINDS = ("借记卡", "贷记卡", "准贷记卡", "预付费卡")
BCBC_KIND = {"DC": "借记卡", "CC": "贷记卡", "SCC": "准贷记卡", "PC": "预付费卡"}
# card_name values that mean "no card name"
EMPTY_CARD_NAMES = {"", "--", "——", "无"}
# Networks a row of the issuer tables may be labelled with from its IIN range. Other ranges
# in card_networks.tsv (RuPay, Maestro, Mir, UATP, T-Union) overlap domestic UnionPay BINs
# (60xxxx, 6304...), so an issuer-table row in those ranges is labelled UnionPay.
BRAND_NETWORKS = {
    "Visa",
    "Mastercard",
    "American Express",
    "JCB",
    "Discover",
    "Diners Club International",
}
UNIONPAY = "UnionPay"

TIER_MAIN = 0  # cn_unionpay_cardbin_2018.tsv
TIER_BCBC = 1  # cn_bank_bin_bcbc_2020.tsv, keys the main table lacks


def read_tsv(path: Path, expect: list[str]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        missing = [c for c in expect if c not in header]
        if missing:
            raise SystemExit(f"{path}: missing columns {missing}")
        rows = []
        for n, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) != len(header):
                raise SystemExit(f"{path}:{n}: {len(rec)} fields, header has {len(header)}")
            rows.append(dict(zip(header, rec)))
    return rows


def is_foreign_code(code: str) -> bool:
    """UnionPay institution codes 25xx-36xx belong to foreign or HK/Macau issuers."""
    return len(code) == 8 and code.isdigit() and 25 <= int(code[:2]) <= 36


class NetworkRange(msgspec.Struct, array_like=True):
    network: str
    start: str
    end: str
    pan_lengths: list[int]


def parse_networks(rows: list[dict[str, str]]) -> list[NetworkRange]:
    out = []
    for r in rows:
        start, end = r["prefix_start"], r["prefix_end"]
        if not (start.isdigit() and end.isdigit() and len(start) == len(end) and start <= end):
            raise SystemExit(f"{NETWORKS}: bad range {start}-{end}")
        lengths = sorted({int(x) for x in r["pan_lengths"].split(",") if x})
        out.append(NetworkRange(r["network"], start, end, lengths))
    return out


def network_candidates(ranges: list[NetworkRange], digits: str, length: int | None):
    for i, nr in enumerate(ranges):
        w = len(nr.start)
        if len(digits) >= w and nr.start <= digits[:w] <= nr.end:
            if length is None or length in nr.pan_lengths:
                yield i, nr


def pick_network(cands) -> NetworkRange | None:
    """UnionPay wins inside 62/81 (Discover co-brand and RuPay overlaps, per NOTES.md);
    otherwise the longest range prefix, then file order."""
    cands = list(cands)
    if not cands:
        return None
    for _, nr in cands:
        if nr.network == UNIONPAY:
            return nr
    return min(cands, key=lambda c: (-len(c[1].start), c[0]))[1]


def row_network(ranges: list[NetworkRange], prefix: str, length: int, code: str | None) -> str:
    """Network label for a row of the issuer tables (all of them are UnionPay-accepted cards)."""
    # Domestic legacy BINs shorter than 4 digits (103, 303, 888) are not ISO IINs:
    # 303 would otherwise read as Diners Club. Foreign issuers (Discover 65, 644) keep theirs.
    if len(prefix) < 4 and not (code and is_foreign_code(code)):
        return UNIONPAY
    nr = pick_network(
        (i, r) for i, r in network_candidates(ranges, prefix, length) if r.network in BRAND_NETWORKS | {UNIONPAY}
    )
    return nr.network if nr else UNIONPAY


def card_name_or_none(name: str) -> str | None:
    name = name.strip()
    return None if name in EMPTY_CARD_NAMES else name


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(shared: Path) -> tuple[dict, list[str]]:
    """Return (document, report lines)."""
    report: list[str] = []
    main = read_tsv(
        shared / MAIN,
        ["issuer_name", "issuer_code", "card_name", "account_length", "issuer_no", "x_pan_prefix", "x_card_kind"],
    )
    bcbc = read_tsv(shared / BCBC, ["bin", "bank", "type", "length", "x_bank_name_zh"])
    names_en = read_tsv(shared / NAMES_EN, ["issuer_code", "zh_name", "en_name", "alipay_code"])
    ranges = parse_networks(read_tsv(shared / NETWORKS, ["network", "prefix_start", "prefix_end", "pan_lengths"]))

    # --- bank names ------------------------------------------------------------------
    listed = {r["issuer_code"]: (r["zh_name"].strip(), r["en_name"].strip() or None) for r in names_en}
    alipay_codes: dict[str, list[str]] = collections.defaultdict(list)
    for r in names_en:
        if r["alipay_code"]:
            alipay_codes[r["alipay_code"]].append(r["issuer_code"])
    spellings: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    first_seen: dict[tuple[str, str], int] = {}
    for i, r in enumerate(main):
        name = r["issuer_name"].strip()
        spellings[r["issuer_code"]][name] += 1
        first_seen.setdefault((r["issuer_code"], name), i)

    def canonical(code: str) -> tuple[str, str | None]:
        if code in listed:
            return listed[code]
        # most frequent spelling in the table, ties to the first one in source order
        name = min(spellings[code].items(), key=lambda kv: (-kv[1], first_seen[(code, kv[0])]))[0]
        return name, None

    multi = sum(1 for c, s in spellings.items() if len(s) > 1)
    report.append(f"institution codes: {len(spellings)}; {multi} with several spellings, one canonical name each")

    # --- main table: dedupe on (x_pan_prefix, account_length) ---------------------------
    by_key: dict[tuple[str, int], list[tuple[int, dict]]] = collections.defaultdict(list)
    for i, r in enumerate(main):
        prefix, length = r["x_pan_prefix"], int(r["account_length"])
        if not prefix.isdigit() or not 1 <= len(prefix) <= 10:
            raise SystemExit(f"{MAIN}: bad x_pan_prefix {prefix!r}")
        if r["x_card_kind"] not in KINDS:
            raise SystemExit(f"{MAIN}: bad x_card_kind {r['x_card_kind']!r}")
        by_key[(prefix, length)].append((i, r))

    records: dict[tuple[int, str, int], tuple] = {}  # (tier, prefix, length) -> record fields
    dup_rows = same_rows = 0
    for key, rows in by_key.items():
        # Prefer the row whose BIN (issuer_no) really is the PAN prefix, then source order.
        rows.sort(key=lambda ir: (ir[1]["issuer_no"] != ir[1]["x_pan_prefix"], ir[0]))
        keep = rows[0][1]
        for _, other in rows[1:]:
            dup_rows += 1
            if (other["issuer_code"], other["x_card_kind"]) != (keep["issuer_code"], keep["x_card_kind"]):
                raise SystemExit(f"{MAIN}: conflicting duplicate key {key}")
            if card_name_or_none(other["card_name"]) == card_name_or_none(keep["card_name"]):
                same_rows += 1
            else:
                report.append(
                    f"main dup {key[0]}/{key[1]}: kept card name {keep['card_name']!r} "
                    f"(BIN {keep['issuer_no']}), dropped {other['card_name']!r} (BIN {other['issuer_no']})"
                )
        code = keep["issuer_code"]
        zh, en = canonical(code)
        records[(TIER_MAIN, key[0], key[1])] = (
            code,
            zh,
            en,
            card_name_or_none(keep["card_name"]),
            keep["x_card_kind"],
            row_network(ranges, key[0], key[1], code),
        )
    report.append(
        f"main: {len(main)} rows -> {len(by_key)} keys; {dup_rows} duplicate rows dropped "
        f"({same_rows} identical apart from issuer_no, the rest differ only in card name)"
    )

    # --- bcbc 2020: main wins on shared keys; add the keys main lacks -----------------
    track_bins = {
        (r["issuer_no"], int(r["account_length"])) for r in main if r["issuer_no"] != r["x_pan_prefix"]
    }
    code_kind = collections.Counter((r["issuer_code"], r["x_card_kind"]) for r in main)
    codes_by_name: dict[str, list[str]] = collections.defaultdict(list)
    for code in sorted(spellings):
        codes_by_name[canonical(code)[0]].append(code)
    agree = disagree = added = skipped = shadowed = 0
    seen_bcbc: set[tuple[str, int]] = set()
    for r in bcbc:
        prefix, length = r["bin"], int(r["length"])
        kind = BCBC_KIND.get(r["type"])
        if kind is None or not prefix.isdigit():
            raise SystemExit(f"{BCBC}: bad row {r}")
        key = (prefix, length)
        if key in seen_bcbc:
            report.append(f"bcbc duplicate key {prefix}/{length} ignored")
            continue
        seen_bcbc.add(key)
        if key in by_key:
            mk = records[(TIER_MAIN, prefix, length)][4]
            if mk == kind:
                agree += 1
            else:
                disagree += 1
                report.append(f"kind conflict {prefix}/{length}: main {mk} kept, bcbc {r['type']} ({kind}) ignored")
            continue
        if key in track_bins:
            skipped += 1
            report.append(f"bcbc {prefix}/{length} skipped: it is a track-data BIN, not a PAN prefix, in the main table")
            continue
        shadow = next(
            (prefix[:k] for k in range(len(prefix) - 1, 0, -1) if (prefix[:k], length) in by_key), None
        )
        if shadow is not None:
            # The lookup tries every main-table BIN before bcbc (NOTES.md), so this key could
            # never answer; the main row also keeps its card name and 准贷记卡 label.
            shadowed += 1
            mrec = records[(TIER_MAIN, shadow, length)]
            report.append(
                f"bcbc {prefix}/{length} ({r['bank']} {r['type']}) dropped: main BIN {shadow} "
                f"({mrec[1]} {mrec[4]}) answers first"
            )
            continue
        # Bank: the canonical name and English name where the Alipay code is in bank_names_en.
        code = None
        zh, en = r["x_bank_name_zh"].strip(), None
        cands = alipay_codes.get(r["bank"], [])
        if cands:
            zh, en = listed[cands[0]]
            # institution code: the bank's code that the main table uses most for this card
            # kind (credit-card centres have their own codes); none if it never does.
            best = max(cands, key=lambda c: (code_kind[(c, kind)], -cands.index(c)))
            if code_kind[(best, kind)] > 0:
                code = best
        elif len(codes_by_name.get(zh, ())) == 1:
            # exactly one institution code of the main table has this canonical name
            code = codes_by_name[zh][0]
            zh, en = canonical(code)
        records[(TIER_BCBC, prefix, length)] = (code, zh, en, None, kind, row_network(ranges, prefix, length, code))
        added += 1
    report.append(
        f"bcbc: {len(bcbc)} rows; {agree + disagree} keys shared with main ({agree} same kind, "
        f"{disagree} kind conflicts, main kept); {added} keys added; {skipped} skipped as track BINs; "
        f"{shadowed} dropped under a shorter main BIN"
    )

    # --- group keys with identical facts into entries -----------------------------------
    banks: list[list] = []
    bank_idx: dict[tuple, int] = {}
    for rec in sorted({(c, zh, en) for c, zh, en, *_ in records.values()}, key=lambda t: (t[0] or "~", t[1], t[2] or "")):
        bank_idx[rec] = len(banks)
        banks.append(list(rec))
    grouped: dict[tuple, list[int]] = collections.defaultdict(list)
    for (tier, prefix, length), (code, zh, en, card, kind, net) in records.items():
        grouped[(tier, prefix, bank_idx[(code, zh, en)], card, kind, net)].append(length)
    entries = []
    for (tier, prefix, bi, card, kind, net), lengths in grouped.items():
        entries.append([prefix, sorted(lengths), bi, card, KINDS.index(kind), net, tier])
    entries.sort(key=lambda e: (e[6], e[0], e[1]))
    report.append(f"entries: {len(entries)} ({len(records)} (prefix, length) keys), banks: {len(banks)}")

    doc = {
        "format": FORMAT,
        "kinds": list(KINDS),
        "sources": {name: sha256(shared / name) for name in INPUTS},
        "banks": banks,  # [institution_code | null, bank_name, bank_name_en | null]
        # [prefix, pan_lengths, bank index, card_name | null, kind index, network, tier]
        "entries": entries,
        "networks": [[n.network, n.start, n.end, n.pan_lengths] for n in ranges],
    }
    return doc, report


def encode(doc: dict) -> bytes:
    raw = msgspec.json.encode(doc)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


def find_shared() -> Path | None:
    for cand in DEFAULT_SHARED_CANDIDATES:
        if (cand / MAIN).is_file():
            return cand
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=None, help="folder with the shared BIN TSVs")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    ap.add_argument("--quiet", action="store_true", help="do not print the build report")
    args = ap.parse_args(argv)
    shared = args.shared or find_shared()
    if shared is None or not (shared / MAIN).is_file():
        print("shared BIN data not found; pass --shared", file=sys.stderr)
        return 2
    doc, report = build(shared)
    data = encode(doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    if not args.quiet:
        for line in report:
            print(line, file=sys.stderr)
        print(f"wrote {args.out} ({len(data)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
