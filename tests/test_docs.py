"""The documents say what the code does: docs/errors.md is what the adapters answer."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from adapters import DIALECTS, dialect_module

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def load_script(relative: str):
    """A script of docs/ (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


errors_table = load_script("docs/errors_table.py")


# --- docs/errors.md --------------------------------------------------------------------------


def test_the_errors_page_is_what_the_adapters_answer_now():
    written = (ROOT / "docs/errors.md").read_text()
    assert written == errors_table.page(), (
        "docs/errors.md is out of date: .venv/bin/python docs/errors_table.py > docs/errors.md"
    )


def documented_cells() -> dict[str, dict[str, str]]:
    """docs/errors.md parsed back: dialect -> failure label -> cell, as a reader sees them."""
    tables: dict[str, dict[str, str]] = {}
    section = None
    for line in (ROOT / "docs/errors.md").read_text().splitlines():
        if line.startswith("## "):
            section = tables.setdefault(line[3:].strip(), {})
        elif section is not None and line.startswith("| ") and not line.startswith("| failure"):
            label, cell = (part.strip() for part in line.strip("|").split(" | "))
            section[label] = cell
    return tables


@pytest.mark.parametrize("name", list(DIALECTS))
def test_each_documented_code_is_the_one_the_dialects_table_maps(name):
    # Independent of the page generator's reading of the bodies: the code each cell shows is
    # what the dialect's own error_code_for() (the metrics and logs label) says, cell by cell.
    module = dialect_module(DIALECTS[name])
    cells = documented_cells()[name]
    assert set(cells) == {label for label, _ in errors_table.FAILURES}
    for label, failure in errors_table.FAILURES:
        if failure is None:
            continue
        code = str(module.error_code_for(failure))
        shown = re.search(r"`([^`]+)`", cells[label])
        if cells[label] == "200 empty `bank_cards`":  # Face++: no code on the wire, the neutral name in logs
            assert name == "facepp" and code == type(failure).__name__, (label, cells[label])
        else:
            assert shown.group(1) == code, (name, label, cells[label], code)


def test_the_hex_switch_for_invalid_numbers_does_what_the_page_says():
    hex_module = dialect_module(DIALECTS["hex"])
    dialect = hex_module.create({"reject_invalid_number": True}, allow_unsigned=True)
    call = dialect.parse(dialect.console_request(errors_table.SOME_IMAGE, errors_table.ReadOptions()))
    response = dialect.render(call, errors_table.INVALID_READING, "rid", 1.0)
    assert json.loads(response.body)["errorcode"] == -9014
    assert "reject_invalid_number\n= true`, which makes it `-9014`" in (ROOT / "docs/errors.md").read_text()


def test_the_readme_links_the_errors_page():
    assert "(docs/errors.md)" in README.read_text()
