"""`cardgate scan`: one record per image, honest errors and exit status (a fake engine, no weights)."""
from __future__ import annotations

import csv
import io
import json
import threading

import pytest

from engine.errors import ImageDecodeError, NoCardFoundError
from engine.evaluate import scan
from gateway.cli import main
from tests.fakes import CMB_BANK, FakeEngine, fake_card_image, luhn_ok, make_reading

VALID = "6225760088888883"
MISREAD = "6225760088888884"  # one digit off: fails Luhn
assert luhn_ok(VALID) and not luhn_ok(MISREAD)


class PerImageEngine(FakeEngine):
    """Reads the number from fake_card_image bytes; b"broken" does not decode, b"empty" holds no card."""

    def __init__(self, **kwargs):
        super().__init__(make_reading(warnings=["reshoot"]), number_from_image=True, **kwargs)

    def read(self, image, options):
        if image == b"broken":
            raise ImageDecodeError("not a JPEG/PNG/BMP/TIFF")
        if image == b"empty":
            raise NoCardFoundError()
        return super().read(image, options)


@pytest.fixture
def cards(tmp_path):
    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "a_valid.jpg").write_bytes(fake_card_image(VALID))
    (folder / "b_misread.jpg").write_bytes(fake_card_image(MISREAD))
    (folder / "c_desk.jpg").write_bytes(b"empty")
    return folder


def run_scan(paths, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    rc = scan(kwargs.pop("engine", None) or PerImageEngine(), [str(p) for p in paths], out=out, err=err, **kwargs)
    return rc, out.getvalue(), err.getvalue().splitlines()


def test_a_number_failing_luhn_is_not_a_success(cards):
    rc, out, err = run_scan([cards])
    records = [json.loads(line) for line in out.splitlines()]
    good, misread, desk = records
    assert good["valid"] is True and good["error"] is None
    assert good["bank"] == CMB_BANK.bank_name and good["card_kind"] == CMB_BANK.card_kind
    assert good["network"] == "UnionPay" and good["warnings"] == ["reshoot"]
    assert misread["valid"] is False and misread["error"] == "invalid_number"
    assert misread["number"] == "622576******8884"  # masked like any other
    assert desk["error"] == "NoCardFoundError" and desk["valid"] is None
    assert rc == 0  # every image was read; the records say what came of each
    assert err == ["cardgate scan: 3 images: 1 read, 1 invalid number, 1 refused (NoCardFoundError 1), 0 unreadable"]
    assert VALID not in out and MISREAD not in out


def test_full_numbers_only_when_asked(cards):
    _, out, _ = run_scan([cards / "a_valid.jpg"], show_full=True)
    assert json.loads(out)["number"] == VALID


def test_a_missing_file_is_one_line_and_exit_1(cards):
    rc, out, err = run_scan([cards / "a_valid.jpg", cards / "nope.jpg"])
    assert rc == 1
    assert [line for line in err if "nope.jpg" in line] == [f"cardgate scan: {cards / 'nope.jpg'}: no such file or folder"]
    assert len(out.splitlines()) == 1  # the image that exists is still read
    assert err[-1] == "cardgate scan: 1 image: 1 read, 0 invalid number, 0 refused, 0 unreadable; 1 path missing or without images"


def test_an_undecodable_image_is_one_line_and_exit_1(cards):
    (cards / "d_broken.jpg").write_bytes(b"broken")
    rc, out, err = run_scan([cards / "d_broken.jpg"])
    assert rc == 1
    assert json.loads(out)["error"] == "ImageDecodeError"
    assert err[0].startswith(f"cardgate scan: {cards / 'd_broken.jpg'}: not an image that can be decoded")
    assert err[-1].endswith("1 unreadable")


def test_an_empty_folder_exits_1_without_loading_the_engine(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no images here")
    assert main(["scan", str(tmp_path)]) == 1  # the real engine would need its weights: never loaded
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"cardgate scan: {tmp_path}: no images in this folder")
    assert err[1] == "cardgate scan: 0 images: 0 read, 0 invalid number, 0 refused, 0 unreadable; 1 path missing or without images"


def test_csv_error_rows_hold_empty_cells(cards):
    rc, out, _ = run_scan([cards], fmt="csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["error"] for row in rows] == ["", "invalid_number", "NoCardFoundError"]
    desk = rows[2]
    assert desk["number"] == desk["valid"] == desk["bank"] == desk["outline"] == ""
    assert "null" not in out and "None" not in out
    assert rows[0]["valid"] == "true" and rows[1]["valid"] == "false" and rows[0]["warnings"] == '["reshoot"]'


class HandshakeEngine(PerImageEngine):
    """The first card's read waits until the second card's has started: only concurrent reads finish,
    and the second ends first."""

    def __init__(self):
        super().__init__()
        self.second_started = threading.Event()

    def read(self, image, options):
        if image == fake_card_image(MISREAD):
            self.second_started.set()
        elif not self.second_started.wait(timeout=30):
            raise AssertionError("the reads did not run concurrently")
        return super().read(image, options)


def test_jobs_read_concurrently_and_keep_the_order(cards):
    engine = HandshakeEngine()
    rc, out, _ = run_scan([cards / "a_valid.jpg", cards / "b_misread.jpg"], engine=engine, jobs=2)
    assert rc == 0
    assert [json.loads(line)["file"].rsplit("/", 1)[1] for line in out.splitlines()] == ["a_valid.jpg", "b_misread.jpg"]


def test_jobs_must_be_a_positive_number(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["scan", "--jobs", "0", "x.jpg"])
    assert exit_.value.code == 2
    assert "'0' is not a number of jobs" in capsys.readouterr().err


def test_no_progress_bar_when_stderr_is_not_a_terminal(cards, capsys):
    rc = scan(PerImageEngine(), [str(cards)], out=io.StringIO())
    assert rc == 0
    assert capsys.readouterr().err.splitlines() == [
        "cardgate scan: 3 images: 1 read, 1 invalid number, 1 refused (NoCardFoundError 1), 0 unreadable"
    ]
