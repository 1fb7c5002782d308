"""Each dialect's error table (adapters/<vendor>_errors.py): one shape, every neutral failure
answered, and no code outside the table can be raised."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from adapters import DIALECTS
from adapters.base import UnknownVendorCode, VendorError
from adapters.error_table import ErrorEntry, ErrorTable
from core.failures import EXCEPTION_FAILURES, Failure, failure_of

ROOT = Path(__file__).resolve().parent.parent


def errors_module(name: str):
    return importlib.import_module(f"adapters.{name}_errors")


def error_class(name: str) -> type[VendorError]:
    module = errors_module(name)
    classes = [value for value in vars(module).values()
               if isinstance(value, type) and issubclass(value, VendorError) and value is not VendorError]
    assert len(classes) == 1, (name, classes)
    return classes[0]


@pytest.mark.parametrize("name", list(DIALECTS))
def test_every_failure_is_a_row_of_every_table(name):
    table = errors_module(name).ERRORS
    assert isinstance(table, ErrorTable)
    assert table.unanswered() == []
    assert all(isinstance(entry, ErrorEntry) for entry in table.values())
    assert all(key == entry.key for key, entry in table.items())


@pytest.mark.parametrize("name", list(DIALECTS))
def test_the_dialect_answers_each_failure_with_its_row(name):
    dialect = importlib.import_module(f"adapters.{name}").create({}, allow_unsigned=True)
    table = errors_module(name).ERRORS
    for kind, failure in EXCEPTION_FAILURES.items():
        exc = kind("x")
        assert failure_of(exc) is failure
        entry = table.for_failure(failure)
        assert dialect.render_error(exc, dialect.new_request_id()).status_code == entry.status, (name, failure)
        if entry.code != "":  # Face++'s empty result has no code on the wire: its metrics name the failure
            assert dialect.error_code(exc) == entry.code, (name, failure)


@pytest.mark.parametrize("name", list(DIALECTS))
def test_a_code_outside_the_table_cannot_be_raised(name):
    cls = error_class(name)
    assert cls.table is errors_module(name).ERRORS
    for key in cls.table:
        assert cls(key, "detail").code == key
    with pytest.raises(UnknownVendorCode):
        raise cls("NOT-A-CODE-OF-ANY-VENDOR", "a typo")


def test_the_adapters_raise_only_their_dialects_errors():
    """No adapter constructs a bare VendorError, whose code no table checks."""
    found = []
    for path in sorted((ROOT / "adapters").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "VendorError":
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_a_table_refuses_a_failure_answered_twice_or_a_key_twice():
    one = ErrorEntry("A", 400, "a", failures=(Failure.BUSY,))
    with pytest.raises(ValueError, match="twice"):
        ErrorTable([one, ErrorEntry("A", 500, "again")], fallback="A")
    with pytest.raises(ValueError, match="answered by"):
        ErrorTable([one, ErrorEntry("B", 500, "b", failures=(Failure.BUSY,))], fallback="A")
    table = ErrorTable([one, ErrorEntry(-1, 500, "internal")], fallback="-1")
    assert table.for_exception(RuntimeError("a bug")).code == -1
    assert table.for_exception(VendorError("unknown")).code == -1
    assert Failure.BUSY not in table.unanswered() and Failure.NO_CARD in table.unanswered()
