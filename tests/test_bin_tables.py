"""bin_tables: BIN lookup on the committed data file (no ../shared needed, except the
rebuild check, which skips when the shared data is absent)."""
from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import msgspec
import pytest

import bin_tables
from bin_tables import bank_info, is_known, is_valid_pan, known_lengths, lookup, luhn_valid, network_of

KINDS = {"借记卡", "贷记卡", "准贷记卡", "预付费卡"}


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit to body."""
    for d in "0123456789":
        if luhn_valid(body + d):
            return body + d
    raise AssertionError("unreachable")


def pan(prefix: str, length: int) -> str:
    """A Luhn-valid number of the given length starting with prefix."""
    return luhn_complete(prefix + "0" * (length - len(prefix) - 1))


def raw_doc() -> dict:
    data = resources.files("bin_tables").joinpath(bin_tables.DATA_FILE).read_bytes()
    return msgspec.json.decode(gzip.decompress(data))


# --- vendor examples ------------------------------------------------------------------


def test_tencent_example_cmb():
    e = lookup("6225760088888888")
    assert e is not None and e.match == "bin"
    assert e.institution_code == "03080000"
    assert e.bank_name == "招商银行"
    assert e.bank_name_en == "China Merchants Bank"
    assert e.card_name == "招商银行信用卡"
    assert e.card_kind == "贷记卡"
    assert e.network == "UnionPay"
    assert 16 in e.pan_lengths
    # the other spelling of the example, as Tencent documents it
    assert lookup("6225768888888888") == e


def test_boc_mastercard_example():
    number = pan("514958", 16)
    assert luhn_valid(number) and len(number) == 16
    e = lookup(number)
    assert e is not None and e.match == "bin"
    assert (e.institution_code, e.bank_name, e.bank_name_en) == ("01040000", "中国银行", "Bank of China")
    assert (e.card_name, e.card_kind, e.network) == ("中银万事达信用卡", "贷记卡", "Mastercard")
    assert is_valid_pan(number)


def test_bank_info_is_engine_struct():
    from engine.types import BankInfo

    info = bank_info("6225760088888888")
    assert isinstance(info, BankInfo)
    assert info.institution_code == "03080000"
    assert info.bank_name == "招商银行"
    assert info.bank_name_en == "China Merchants Bank"
    assert info.card_name == "招商银行信用卡"
    assert info.card_kind == "贷记卡"
    assert info.network == "UnionPay"
    assert info.pan_lengths == (16,)
    assert bank_info("7") is None or bank_info("7").institution_code is None
    assert bank_info("") is None


def test_notes_examples():
    e = lookup("6222021234567890123")
    assert (e.institution_code, e.card_name, e.card_kind) == ("01020000", "E时代卡", "借记卡")


# --- nested prefixes and PAN length -------------------------------------------------------


@pytest.mark.parametrize(
    "number, code, bank",
    [
        ("4367421930000000000", "01053930", "建行厦门分行"),  # 9-digit BIN inside 436742
        ("4367420000000000000", "01050000", "中国建设银行"),
        (pan("62249802", 19), "04571260", "秦皇岛银行股份有限公司"),  # inside 622498
        (pan("622498", 19), "04221210", "河北银行股份有限公司"),
        (pan("6223092900", 19), "03162900", "浙商银行上海分行"),  # 10-digit branch BIN
        (pan("6223091000", 19), "03160000", "浙商银行"),
    ],
)
def test_nested_prefixes_longest_wins(number, code, bank):
    e = lookup(number)
    assert e is not None and e.match == "bin"
    assert (e.institution_code, e.bank_name) == (code, bank)
    assert e.prefix == number[: len(e.prefix)]


@pytest.mark.parametrize(
    "prefix, length, code, kind",
    [
        ("622309", 18, "01020000", "借记卡"),  # ICBC 牡丹灵通卡
        ("622309", 19, "03160000", "借记卡"),  # 浙商银行
        ("622303", 16, "04240001", "贷记卡"),  # 南京银行 credit
        ("622303", 18, "01020000", "借记卡"),  # ICBC debit
        ("622902", 16, "03090010", "贷记卡"),
        ("622902", 18, "01020000", "借记卡"),
        ("603367", 18, "04233310", "借记卡"),
        ("603367", 19, "64233310", "借记卡"),
    ],
)
def test_length_dependent_rows(prefix, length, code, kind):
    e = lookup(pan(prefix, length))
    assert e is not None and e.match == "bin"
    assert (e.institution_code, e.card_kind) == (code, kind)
    assert length in e.pan_lengths


def test_length_that_fits_no_row_gives_no_bank_when_banks_differ():
    # 622303 is 南京银行 at 16 and ICBC at 18: a 17-digit number must not pick either.
    e = lookup(pan("622303", 17))
    assert e is not None
    assert e.match == "network" and e.bank_name is None and e.network == "UnionPay"
    assert not is_known(pan("622303", 17))


def test_length_agnostic_match_is_marked_and_invalid():
    short = "622576008888888"  # 15 digits: a dropped digit
    e = lookup(short)
    assert e is not None and e.match == "prefix"
    assert e.institution_code == "03080000" and e.pan_lengths == (16,)
    assert not is_known(short)
    assert not is_valid_pan(luhn_complete(short[:-1]))


# --- unknown issuers: network only, never a bank ----------------------------------------------


@pytest.mark.parametrize(
    "number, network",
    [
        (pan("8100", 16), "UnionPay"),  # 81-series: newer than the 2018 table
        (pan("628100", 16), "UnionPay"),
        (pan("622126", 16), "UnionPay"),  # Discover co-brand range inside 62: UnionPay for CN cards
        ("4111111111111111", "Visa"),
        ("5555555555554444", "Mastercard"),
        ("2223003122003222", "Mastercard"),
        ("378282246310005", "American Express"),
        ("3530111333300000", "JCB"),
        ("6011000990139424", "Discover"),
        (pan("22000", 16), "Mir"),
    ],
)
def test_unknown_issuer_gives_network_only(number, network):
    e = lookup(number)
    assert e is not None
    if e.match != "network":  # some of these prefixes are real issuers in the table
        assert e.network == network
        return
    assert e.network == network
    assert e.institution_code is None and e.bank_name is None and e.bank_name_en is None
    assert e.card_name is None and e.card_kind is None
    assert e.prefix == "" and e.source == "card_networks"
    assert len(number) in e.pan_lengths
    assert not is_known(number)


def test_network_fallback_entries_really_have_no_bank():
    for number in (pan("8100", 16), pan("628100", 19), "4111111111111111", "378282246310005"):
        e = lookup(number)
        assert e.match == "network", number
        info = bank_info(number)
        assert info.institution_code is None and info.bank_name is None and info.network == e.network


def test_no_network_no_answer():
    assert lookup(pan("7", 16)) is None
    assert network_of(pan("7", 16)) is None
    assert lookup("") is None
    assert lookup("abcd") is None


EXPECTED_NETWORKS = {
    "Visa",
    "Mastercard",
    "American Express",
    "JCB",
    "UnionPay",
    "Discover",
    "Diners Club International",
    "Maestro",
    "Mir",
    "RuPay",
    "UATP",
    "China T-Union",
}

# range start -> network expected from network_of, where an overlap is resolved otherwise
OVERLAP_WINNER = {
    ("Discover", "622126"): "UnionPay",  # NOTES: mainland 62 is UnionPay
    ("RuPay", "353"): "JCB",  # inside JCB 3528-3589, longer range wins
    ("RuPay", "356"): "JCB",
}


def test_every_network_in_card_networks():
    doc = raw_doc()
    names = {n for n, *_ in doc["networks"]}
    assert names == EXPECTED_NETWORKS
    for name, start, end, lengths in doc["networks"]:
        expect = OVERLAP_WINNER.get((name, start), name)
        for edge in (start, end):
            for length in lengths:
                number = pan(edge, length)
                assert network_of(number) == expect, (name, edge, length)
                e = lookup(number)
                assert e is not None
                if e.match == "network":
                    assert e.network == expect and e.bank_name is None


def test_network_length_checked_first():
    # 60 is RuPay at 16 digits only; a 19-digit 60... number is then network by prefix alone
    assert network_of(pan("6000", 16)) == "RuPay"
    assert network_of(pan("6000", 19)) == "RuPay"  # no range fits 19 digits: prefix alone
    assert lookup(pan("6000", 19)) is None or lookup(pan("6000", 19)).network == "RuPay"
    assert network_of(pan("32", 16)) is None
    assert network_of(pan("37", 15)) == "American Express"


# --- table contents -----------------------------------------------------------------------


def test_issuer_rows_carry_canonical_fields():
    doc = raw_doc()
    assert doc["format"] == "cardgate-bin-table/1"
    assert set(doc["kinds"]) == KINDS
    keys = 0
    for prefix, lengths, bi, card, ki, net, tier in doc["entries"]:
        assert prefix.isdigit() and 1 <= len(prefix) <= 10
        assert lengths and all(12 <= n <= 19 for n in lengths)
        code, zh, en = doc["banks"][bi]
        assert zh and (code is None or (len(code) == 8 and code.isdigit()))
        assert card is None or card not in ("", "--")
        assert net in EXPECTED_NETWORKS
        assert tier in (0, 1)
        keys += len(lengths)
    assert keys > 4800


def test_every_entry_is_found_by_its_own_prefix():
    t = bin_tables._table()
    for tier, by_key in enumerate(t.by_key):
        for (prefix, n), e in by_key.items():
            got = lookup(prefix + "0" * (n - len(prefix)))
            assert got is not None and got.match == "bin"
            if tier == 0:
                # a longer BIN (of another bank, perhaps) may own the zero-padded number
                assert got.prefix.startswith(prefix)
                assert got.source == "unionpay2018"


def test_canonical_chinese_names():
    # the table spells 01020000 both 工商银行 and 中国工商银行
    assert lookup(pan("622202", 19)).bank_name == "中国工商银行"
    assert lookup(pan("9558", 19)).bank_name == "中国工商银行"
    # 广发银行股份有限公司 in the table
    assert lookup(pan("9111", 19)).bank_name == "广发银行"
    # a bank without an English name keeps its Chinese name and no English one
    e = lookup(pan("622498", 19))
    assert e.bank_name_en is None and e.bank_name


def test_quasi_credit_and_conflicts():
    e = lookup(pan("622210", 16))  # ICBC, SCC in bcbc, 准贷记卡 rebuilt
    assert (e.institution_code, e.card_kind) == ("01020000", "准贷记卡")
    # main table wins over bcbc on a shared key: 627066/16 is 借记卡 in main, CC in bcbc
    assert lookup(pan("627066", 16)).card_kind == "借记卡"
    # duplicate rows with a track-data BIN: the PAN-positioned row's card name is kept
    assert lookup(pan("451804", 16)).card_name == "牡丹贷记卡(银联卡)"


def test_bcbc_keys_fill_gaps():
    e = lookup(pan("541709", 16))
    assert e.source == "bcbc2020" and e.match == "bin"
    assert (e.institution_code, e.bank_name, e.card_kind, e.network) == ("03060000", "广发银行", "贷记卡", "Mastercard")
    assert e.bank_name_en == "China Guangfa Bank" and e.card_name is None
    # main-table BINs answer before bcbc ones, even shorter ones (NOTES.md lookup order):
    # bcbc 532421/16 CCB DC lies under main 53242/16 CCB MASTER准贷记卡
    e = lookup(pan("532421", 16))
    assert (e.source, e.prefix, e.card_kind) == ("unionpay2018", "53242", "准贷记卡")
    e = lookup(pan("486495", 16))  # Standard Chartered HK: no institution code is made up
    assert e.institution_code is None and e.bank_name == "渣打银行（香港）"
    # the track-data BIN 18572 of the main table is not added as a PAN prefix
    assert lookup(pan("18572", 18)).match != "bin"
    assert lookup(pan("018572", 18)).institution_code == "14097310"


def test_domestic_legacy_bins():
    e = lookup(pan("303", 16))
    assert (e.institution_code, e.network) == ("03030000", "UnionPay")  # not Diners Club
    assert lookup(pan("95555", 16)).institution_code == "03080000"
    assert lookup(pan("103", 19)).institution_code == "01030000"
    assert lookup(pan("84380", 16)).institution_code == "03100000"


def test_brand_bins_of_chinese_banks():
    assert lookup(pan("356885", 16)).network == "JCB"
    assert lookup(pan("370285", 15)).network == "American Express"
    assert lookup(pan("360883", 14)).network == "Diners Club International"
    assert lookup(pan("601100", 16)).network == "Discover"


# --- input handling and helpers -------------------------------------------------------------


def test_spaces_and_dashes_ignored():
    e = lookup("6225760088888888")
    assert lookup("6225 7600 8888 8888") == e
    assert lookup("6225-7600-8888-8888") == e
    assert lookup("６２２５７６００８８８８８８８８") is None  # full-width digits are not digits here


def test_is_known_and_known_lengths_agree():
    samples = [
        pan("622309", 18),
        pan("622309", 19),
        pan("622309", 17),
        "6225760088888888",
        pan("8100", 16),
        "4367421930000000000",
        pan("530984", 16),
    ]
    for number in samples:
        assert is_known(number) == (len(number) in known_lengths(number[:10])), number
    assert known_lengths("622309") >= {18, 19}
    assert 16 in known_lengths("622576")
    assert known_lengths("8100") == frozenset()
    assert known_lengths("") == frozenset()


def test_is_valid_pan():
    good = pan("622576", 16)
    assert is_valid_pan(good)
    bad_check = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert not is_valid_pan(bad_check)
    assert not is_valid_pan(pan("622576", 19))  # Luhn ok, wrong length for this BIN
    assert is_valid_pan("4111111111111111")  # unknown issuer, Visa length
    assert not is_valid_pan(pan("7", 16))
    assert not is_valid_pan("")


@pytest.mark.parametrize(
    "digits, ok",
    [
        ("79927398713", True),
        ("79927398710", False),
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("0", True),
        ("00", True),
        ("18", True),
        ("81", False),
        ("", False),
        ("4111 1111 1111 1111", False),  # luhn_valid takes digits only
        ("41111111x1111111", False),
        ("４１１１", False),
        ("6225760088888888", False),
        ("6225768888888888", True),  # Tencent's documented example is Luhn-valid
    ],
)
def test_luhn_edges(digits, ok):
    assert luhn_valid(digits) is ok


def test_luhn_catches_single_digit_errors_and_adjacent_swaps():
    good = luhn_complete("622576008888888")
    assert luhn_valid(good)
    for i in range(len(good)):
        for d in "0123456789":
            if d != good[i]:
                assert not luhn_valid(good[:i] + d + good[i + 1 :])
    swapped = good[:4] + good[5] + good[4] + good[6:]  # 7,6 -> 6,7
    assert swapped != good and not luhn_valid(swapped)


def test_luhn_complete_helper_valid_for_all_lengths():
    for n in range(12, 20):
        assert luhn_valid(pan("62", n))


# --- the committed file ---------------------------------------------------------------------


def test_data_file_is_compact_and_packaged():
    data = resources.files("bin_tables").joinpath(bin_tables.DATA_FILE).read_bytes()
    assert 10_000 < len(data) < 1_000_000


def _shared_dir() -> Path | None:
    from bin_tables import build

    return build.find_shared()


def test_committed_file_matches_fresh_build(tmp_path):
    shared = _shared_dir()
    if shared is None:
        pytest.skip("shared BIN data (../shared/data/bin) not present")
    from bin_tables import build

    out = tmp_path / "bins.json.gz"
    assert build.main(["--shared", str(shared), "--out", str(out), "--quiet"]) == 0
    committed = resources.files("bin_tables").joinpath(bin_tables.DATA_FILE).read_bytes()
    assert out.read_bytes() == committed, "bin_tables/data is stale: run python -m bin_tables.build"
