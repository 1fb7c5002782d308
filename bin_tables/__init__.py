"""Bank card BIN table: issuer, card name, card kind and network from a card number.

The table is compiled by ``python -m bin_tables.build`` into ``bin_tables/data/bins.json.gz``
and loaded once, lazily, on the first call. Nothing here reads ``../shared`` at run time.

Lookup order for a PAN of length L (after ``shared/data/bin/NOTES.md``):

1. longest prefix (10 digits down to 1) with PAN length L in the UnionPay 2018 table;
2. the same in the bcbc 2020 keys that the UnionPay table lacks;
3. length-agnostic longest prefix of at least 6 digits in those tables (``match="prefix"``:
   the PAN length does not fit, probably a misread; card name and kind are dropped when the
   prefix's rows disagree on them);
4. the card network from its IIN range (``match="network"``), with no bank;
5. otherwise ``None``.
"""
from __future__ import annotations

import gzip
import threading
from importlib import resources

import msgspec

__all__ = [
    "BankInfo",
    "BinEntry",
    "lookup",
    "bank_info",
    "is_known",
    "known_lengths",
    "network_of",
    "luhn_valid",
    "is_valid_pan",
    "DATA_FILE",
]

DATA_FILE = "data/bins.json.gz"
FORMAT = "cardgate-bin-table/1"
MAX_PREFIX = 10
MIN_AGNOSTIC_PREFIX = 6
SOURCES = ("unionpay2018", "bcbc2020")
UNIONPAY = "UnionPay"


class BankInfo(msgspec.Struct):
    """Issuer facts for a card number, as the engine reports them (engine.types re-exports it:
    the table is below the engine and has its own types)."""

    institution_code: str | None  # UnionPay institution code, e.g. "03080000"
    bank_name: str | None  # canonical Chinese name, e.g. "招商银行"
    bank_name_en: str | None
    card_name: str | None  # e.g. "招商银行信用卡"
    card_kind: str | None  # 借记卡 / 贷记卡 / 准贷记卡 / 预付费卡
    network: str | None  # UnionPay, Visa, Mastercard, ...
    pan_lengths: tuple[int, ...] = ()


class BinEntry(msgspec.Struct, frozen=True):
    """What the table knows about a card number."""

    prefix: str  # the matched BIN ("" for a network-only answer: see match)
    institution_code: str | None  # UnionPay institution code, e.g. "03080000"
    bank_name: str | None  # canonical Chinese name, e.g. "招商银行"
    bank_name_en: str | None  # English display name where known
    card_name: str | None  # e.g. "招商银行信用卡"; None when the table has none
    card_kind: str | None  # 借记卡 / 贷记卡 / 准贷记卡 / 预付费卡
    network: str | None  # UnionPay, Visa, Mastercard, American Express, JCB, Discover, ...
    pan_lengths: tuple[int, ...]  # PAN lengths this answer expects
    match: str  # "bin" (prefix and length), "prefix" (length does not fit), "network"
    source: str  # "unionpay2018", "bcbc2020" or "card_networks"


class _Table:
    __slots__ = ("by_key", "by_prefix", "lengths_by_prefix", "networks")

    def __init__(self, doc: dict) -> None:
        if doc.get("format") != FORMAT:
            raise ValueError(f"bin_tables: unexpected data format {doc.get('format')!r}")
        kinds = doc["kinds"]
        banks = [tuple(b) for b in doc["banks"]]
        # one dict per tier: (prefix, pan_length) -> entry
        self.by_key: tuple[dict, dict] = ({}, {})
        # one dict per tier: prefix (>= 6 digits) -> entries for every length
        self.by_prefix: tuple[dict, dict] = ({}, {})
        # prefix -> frozenset of PAN lengths, both tiers
        lengths_by_prefix: dict[str, set[int]] = {}
        for prefix, lengths, bi, card, ki, net, tier in doc["entries"]:
            code, zh, en = banks[bi]
            entry = BinEntry(
                prefix=prefix,
                institution_code=code,
                bank_name=zh,
                bank_name_en=en,
                card_name=card,
                card_kind=kinds[ki],
                network=net,
                pan_lengths=tuple(lengths),
                match="bin",
                source=SOURCES[tier],
            )
            for n in lengths:
                self.by_key[tier][(prefix, n)] = entry
            if len(prefix) >= MIN_AGNOSTIC_PREFIX:
                self.by_prefix[tier].setdefault(prefix, []).append(entry)
            lengths_by_prefix.setdefault(prefix, set()).update(lengths)
        self.lengths_by_prefix = {p: frozenset(s) for p, s in lengths_by_prefix.items()}
        # (network, start, end, width, lengths), sorted longest range first, file order kept
        nets = [(n, s, e, len(s), tuple(ls)) for n, s, e, ls in doc["networks"]]
        self.networks = sorted(nets, key=lambda t: -t[3])


_lock = threading.Lock()
_loaded: _Table | None = None


def _table() -> _Table:
    """The table, loaded from the package data on first use (once, thread-safe)."""
    global _loaded
    t = _loaded
    if t is None:
        with _lock:
            if _loaded is None:
                raw = resources.files(__name__).joinpath(DATA_FILE).read_bytes()
                _loaded = _Table(msgspec.json.decode(gzip.decompress(raw)))
            t = _loaded
    return t


def _digits(pan: str) -> str | None:
    if not isinstance(pan, str):
        return None
    if not (pan.isascii() and pan.isdigit()):
        pan = pan.replace(" ", "").replace("-", "")
        if not (pan.isascii() and pan.isdigit()):
            return None
    return pan


def _exact(t: _Table, pan: str) -> BinEntry | None:
    n = len(pan)
    for by_key in t.by_key:
        for k in range(min(MAX_PREFIX, n), 0, -1):
            e = by_key.get((pan[:k], n))
            if e is not None:
                return e
    return None


def _agnostic(t: _Table, pan: str) -> BinEntry | None:
    for by_prefix in t.by_prefix:
        for k in range(min(MAX_PREFIX, len(pan)), MIN_AGNOSTIC_PREFIX - 1, -1):
            entries = by_prefix.get(pan[:k])
            if not entries:
                continue
            first = entries[0]
            if any(e.institution_code != first.institution_code or e.bank_name != first.bank_name for e in entries):
                # the prefix belongs to different banks at different lengths: no safe answer
                return None
            lengths = tuple(sorted({n for e in entries for n in e.pan_lengths}))
            same_card = all((e.card_name, e.card_kind) == (first.card_name, first.card_kind) for e in entries)
            same_net = all(e.network == first.network for e in entries)
            return msgspec.structs.replace(
                first,
                card_name=first.card_name if same_card else None,
                card_kind=first.card_kind if same_card else None,
                network=first.network if same_net else None,
                pan_lengths=lengths,
                match="prefix",
            )
    return None


def _network(t: _Table, pan: str, length: int | None) -> tuple[str, tuple[int, ...]] | None:
    """Longest matching IIN range (file order on ties); inside 62 and 81 UnionPay beats the
    Discover co-brand and RuPay overlaps, as NOTES.md says for mainland cards."""
    best = None
    for name, start, end, width, lengths in t.networks:  # longest range first
        if len(pan) >= width and start <= pan[:width] <= end and (length is None or length in lengths):
            if name == UNIONPAY:
                return name, lengths
            if best is None:
                best = (name, lengths)
    return best


def lookup(pan: str) -> BinEntry | None:
    """Issuer facts for a card number (digits; spaces and dashes are ignored).

    Returns the longest matching BIN for the number's length, else a length-agnostic match
    (``match="prefix"``), else a network-only answer (``match="network"``, no bank), else None.
    """
    digits = _digits(pan)
    if not digits:
        return None
    t = _table()
    e = _exact(t, digits)
    if e is not None:
        return e
    e = _agnostic(t, digits)
    if e is not None:
        return e
    net = _network(t, digits, len(digits)) or _network(t, digits, None)
    if net is None:
        return None
    return BinEntry(
        prefix="",
        institution_code=None,
        bank_name=None,
        bank_name_en=None,
        card_name=None,
        card_kind=None,
        network=net[0],
        pan_lengths=net[1],
        match="network",
        source="card_networks",
    )


def is_known(pan: str) -> bool:
    """True when some issuer BIN in the table matches this number's prefix AND length."""
    digits = _digits(pan)
    return bool(digits) and _exact(_table(), digits) is not None


def known_lengths(digits: str) -> frozenset[int]:
    """PAN lengths L for which an issuer BIN of the table is a prefix of ``digits``.

    For a decoder that has read the first digits: ``len(pan) in known_lengths(pan[:10])`` is
    the same test as ``is_known(pan)``. Empty when no issuer BIN matches.
    """
    d = _digits(digits)
    if not d:
        return frozenset()
    lbp = _table().lengths_by_prefix
    out: set[int] = set()
    for k in range(1, min(MAX_PREFIX, len(d)) + 1):
        s = lbp.get(d[:k])
        if s:
            out.update(s)
    return frozenset(out)


def network_of(pan: str) -> str | None:
    """Card network from the IIN ranges alone (length-checked first, then prefix only)."""
    digits = _digits(pan)
    if not digits:
        return None
    t = _table()
    net = _network(t, digits, len(digits)) or _network(t, digits, None)
    return net[0] if net else None


def luhn_valid(digits: str) -> bool:
    """Luhn (mod 10) check. False for an empty string or anything but ASCII digits."""
    if not isinstance(digits, str) or not digits or not (digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_valid_pan(pan: str) -> bool:
    """Luhn passes and the length is one the table expects for this number's BIN
    (or network, when the issuer is unknown). False for numbers no table knows."""
    digits = _digits(pan)
    if not digits or not luhn_valid(digits):
        return False
    e = lookup(digits)
    return e is not None and len(digits) in e.pan_lengths


def bank_info(pan: str) -> BankInfo | None:
    """``lookup`` as a BankInfo, what the engine reports (None when nothing matched)."""
    e = lookup(pan)
    if e is None:
        return None
    return BankInfo(
        institution_code=e.institution_code,
        bank_name=e.bank_name,
        bank_name_en=e.bank_name_en,
        card_name=e.card_name,
        card_kind=e.card_kind,
        network=e.network,
        pan_lengths=e.pan_lengths,
    )
