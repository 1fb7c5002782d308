"""`cardgate eval` (and compare's --labels): a labels file that is missing or not one is one line, exit 2.

Every case is refused before the model loads, so these run without the engine's weights.
"""
from __future__ import annotations

import pytest

from gateway.cli import main

HEADER = "file\tkind\tcard_number\texpiry\n"


def eval_error(capsys, labels) -> str:
    assert main(["eval", str(labels)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert captured.out == ""
    return lines[0]


def test_a_missing_labels_file(tmp_path, capsys):
    path = tmp_path / "nope.tsv"
    assert eval_error(capsys, path) == f"cardgate eval: cannot read labels {path}: No such file or directory"


def test_a_comma_separated_labels_file(tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("file,kind,card_number,expiry\nc1.jpg,full_card,6225760088888883,08/22\n", encoding="utf-8")
    line = eval_error(capsys, path)
    assert line.startswith(f"cardgate eval: {path}: looks comma-separated: labels are tab-separated")
    assert "file, kind, card_number, expiry" in line


@pytest.mark.parametrize("header, missing", [("file\tkind\texpiry\n", "card_number"), ("image\tnumber\n", "file or card_number")])
def test_a_labels_file_without_the_columns(tmp_path, capsys, header, missing):
    path = tmp_path / "labels.tsv"
    path.write_text(header, encoding="utf-8")
    assert eval_error(capsys, path).startswith(f"cardgate eval: {path}: no {missing} column: labels are tab-separated")


def test_a_labelled_image_that_is_not_there(tmp_path, capsys):
    (tmp_path / "c1.jpg").write_bytes(b"\xff\xd8")
    path = tmp_path / "labels.tsv"
    path.write_text(HEADER + "c1.jpg\tfull_card\t6225760088888883\t\n"
                    "c2.jpg\tfull_card\t6225760088888883\t\nc3.jpg\tfull_card\t6225760088888883\t\n"
                    "c9.jpg\tnumber_segment\t1234\t\n", encoding="utf-8")  # segments are not read: not checked
    assert eval_error(capsys, path) == f"cardgate eval: {path} line 3: no image c2.jpg in {tmp_path} (and 1 more missing)"


def test_a_labels_file_that_is_not_text(tmp_path, capsys):
    path = tmp_path / "labels.tsv"
    path.write_bytes(b"\xff\xd8\xff\xe0 a JPEG by mistake")
    assert eval_error(capsys, path) == f"cardgate eval: {path}: not UTF-8 text"


def test_compare_refuses_a_comma_separated_labels_file(tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("file,card_number\n", encoding="utf-8")
    assert main(["compare", "--dialect", "hex", "--a", "http://127.0.0.1:1", "--b", "http://127.0.0.1:1",
                 "--labels", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "looks comma-separated" in err[0]


@pytest.mark.parametrize("rows, says", [
    ("", "no card photos labelled (rows of kind full_card, or no kind)"),
    ("c1.jpg\tcard\t6225760088888883\t\nc2.jpg\tnumber_segment\t1234\t\n",
     "no card photos labelled (rows of kind full_card, or no kind); kinds in it: card, number_segment"),
])
def test_a_labels_file_with_no_card_rows(tmp_path, capsys, rows, says):
    """A header alone, or a kind misspelt on every row: nothing would be read, every figure 0."""
    (tmp_path / "c1.jpg").write_bytes(b"\xff\xd8")
    path = tmp_path / "labels.tsv"
    path.write_text(HEADER + rows, encoding="utf-8")
    assert eval_error(capsys, path) == f"cardgate eval: {path}: {says}"


def test_eval_reads_the_rows_compare_counts(tmp_path):
    """Rows without a kind are card photos to both `cardgate eval` and `cardgate compare`."""
    from engine.evaluate import run_labels
    from gateway.migrate.labels import load_labels
    from tests.fakes import FakeEngine, fake_card_image

    for name, number in (("c1.jpg", "6225760088888883"), ("c2.jpg", "6222020200112233447"), ("s1.jpg", "6225")):
        (tmp_path / name).write_bytes(fake_card_image(number))
    path = tmp_path / "labels.tsv"
    path.write_text(HEADER + "c1.jpg\tfull_card\t6225760088888883\t\nc2.jpg\t\t6222020200112233447\t\n"
                    "s1.jpg\tnumber_segment\t6225\t\n", encoding="utf-8")
    outcomes = run_labels(FakeEngine(number_from_image=True), str(path))
    assert [o.file for o in outcomes] == ["c1.jpg", "c2.jpg"]
    assert [o.number for o in outcomes] == ["6225760088888883", "6222020200112233447"]
    assert sorted(p.rsplit("/", 1)[1] for p in load_labels(str(path))) == ["c1.jpg", "c2.jpg"]
