"""The documents say what the code does: docs/errors.md is what the adapters answer, and the
README's SDK snippets, as written, read a card through a gateway configured as the README's
config reference says."""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from adapters import DIALECTS, dialect_module
from gateway.app import create_app
from tests.fakes import FakeEngine, luhn_ok, make_reading
from tests.test_huawei_support import photo

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


# --- README.md snippets ----------------------------------------------------------------------

README_HOST = "127.0.0.1:8080"  # what the snippets point at; replaced by the test gateway's address


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def fenced_blocks(text: str, language: str) -> list[tuple[str, str]]:
    """(vendor, code) for each ```language block, the vendor being the last **bold** name before it."""
    blocks = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M):
        vendors = re.findall(r"^\*\*([^*]+)\*\*", text[: match.start()], re.M)
        blocks.append((vendors[-1] if vendors else "", match.group(1)))
    return blocks


def readme_config() -> dict:
    """The config reference block of the README, vendor tables only: the snippets use its example
    keys. Shadow tables are left out (they would mirror each request to the real vendors)."""
    (block,) = [code for _, code in fenced_blocks(readme_section("Configuration"), "toml")]
    config = tomllib.loads(block)
    tables = {name: dict(table) for name, table in config.items() if name in DIALECTS}
    for table in tables.values():
        table.pop("shadow", None)
    return tables


SDK_SECTION = "Pointing each vendor's SDK at the gateway"
PYTHON_SNIPPETS = fenced_blocks(readme_section(SDK_SECTION), "python")


def missing_imports(code: str) -> list[str]:
    """Top-level modules the snippet imports that are not installed here."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


@pytest.fixture
def readme_gateway(live_gateway, tmp_path, monkeypatch):
    """(engine, host:port) of a gateway with the README's keys, signatures checked, and a
    card.jpg in the current folder, where the snippets look for it."""
    number = next(n for n in (f"622576008888888{d}" for d in range(10)) if luhn_ok(n))  # the answer is a success
    engine = FakeEngine(make_reading(number))
    base_url = live_gateway(create_app(readme_config(), engine, allow_unsigned=False))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "card.jpg").write_bytes(photo(480, 300))
    return engine, base_url.split("://", 1)[1]


def test_the_readme_has_a_python_snippet_for_each_python_sdk():
    assert [vendor for vendor, _ in PYTHON_SNIPPETS] == ["Tencent", "Huawei", "Face++", "myqcloud", "Baidu", "Alibaba"]
    assert all(README_HOST in code for _, code in PYTHON_SNIPPETS)


@pytest.mark.parametrize("vendor, code", PYTHON_SNIPPETS, ids=[vendor for vendor, _ in PYTHON_SNIPPETS])
def test_readme_python_snippet_reads_a_card_through_the_gateway(vendor, code, readme_gateway):
    missing = missing_imports(code)
    if missing:
        pytest.skip(f"{vendor} SDK not installed: {', '.join(missing)}")
    engine, host = readme_gateway
    # Run as written, in a namespace of its own: a name the snippet uses without defining it
    # is a NameError here, as it would be for a reader pasting it.
    exec(compile(code.replace(README_HOST, host), f"README.md ({vendor})", "exec"), {"__name__": "__readme__"})
    assert len(engine.calls) == 1, f"the {vendor} snippet did not get a photo read (refused before the engine?)"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_readme_hex_curl_reads_a_card(readme_gateway):
    (code,) = [code for vendor, code in fenced_blocks(readme_section(SDK_SECTION), "sh") if vendor == "hex"]
    engine, host = readme_gateway
    done = subprocess.run(["bash", "-c", code.replace(README_HOST, host)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["errorcode"] == 0 and answer["session_id"] == "s1", answer
    assert len(engine.calls) == 1
