"""Config tables decoded into msgspec Structs, with errors a person can act on.

msgspec says `Expected `array`, got `str` - at `$.tokens``; an operator wants to read
`[huawei] tokens: expected an array of strings, got a string`. `convert` decodes one
table into its Struct and turns any ValidationError into a ConfigError with that
one line: the TOML table, the key, what the Struct expects and what the file has.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

T = TypeVar("T")


class ConfigError(ValueError):
    """The config is unreadable or a key does not fit; the message is one line naming the key."""

_MESSAGE_RE = re.compile(r"^(?P<what>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.S)
_SEGMENT_RE = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `(?P<name>.*)`$")
_MISSING_RE = re.compile(r"^Object missing required field `(?P<name>.*)`$")
_WRONG_TYPE_RE = re.compile(r"^Expected `[^`]+`, got `(?P<got>[^`]+)`$")
_CONSTRAINT_RE = re.compile(r"^Expected `[^`]+`(?P<constraint> .+)$")
_ENUM_RE = re.compile(r"^Invalid enum value (?P<value>.+)$")

_GOT = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "array": "an array",
    "object": "a table",
    "null": "nothing",
    "datetime": "a date-time",
    "date": "a date",
    "time": "a time",
}
_ARRAYS = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
_KEY = object()  # a dict key msgspec does not name (it says `[...]`): found by `_name_dict_keys`


def convert(data: Any, kind: type[T], where: tuple[str, ...] = ()) -> T:
    """`data` (a TOML table) as a `kind` Struct; ConfigError naming the key when it does not fit.

    `where` is the table's own place in the file, e.g. ("huawei",)."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(describe(exc, data, kind, where)) from None


def describe(exc: msgspec.ValidationError, data: Any, kind: type, where: tuple[str, ...] = ()) -> str:
    """The one line for `exc`, raised while converting `data` to `kind`."""
    match = _MESSAGE_RE.match(str(exc))
    what, path = match["what"], _segments(match["path"] or "$")
    if _KEY in path:
        path = _name_dict_keys(data, kind, path, str(exc))
    unknown, missing = _UNKNOWN_RE.match(what), _MISSING_RE.match(what)
    if unknown:
        names = _field_names(_type_at(kind, path))
        if not path and not where:
            return f"unknown table [{unknown['name']}] (tables: {', '.join(names)})"
        return f"{_place(where, [*path, unknown['name']])}: unknown key (keys: {', '.join(names)})"
    if missing:
        path = [*path, missing["name"]]
        return f"{_place(where, path)}: missing, expected {_expected(_type_at(kind, path))}"
    expected = _expected(_type_at(kind, path))
    wrong, constraint, enum = _WRONG_TYPE_RE.match(what), _CONSTRAINT_RE.match(what), _ENUM_RE.match(what)
    if wrong:
        got = _GOT.get(wrong["got"], wrong["got"])
        return f"{_place(where, path)}: expected {expected}, got {got}"
    if constraint:
        return f"{_place(where, path)}: expected {expected}{constraint['constraint']}, got {_shown(_value_at(data, path))}"
    if enum:
        return f"{_place(where, path)}: expected {expected}, got {_shown(_value_at(data, path))}"
    # A Struct's own check (__post_init__), already in words: about the table as a whole.
    return f"{_place(where, path, table=True)}: {what}"


def _segments(path: str) -> list:
    """"$.apps[...].buckets[0]" -> ["apps", _KEY, "buckets", 0]."""
    out: list = []
    for name, index in _SEGMENT_RE.findall(path[1:]):
        out.append(name if name else _KEY if index == "..." else int(index))
    return out


def _place(where: tuple[str, ...], path: list, table: bool = False) -> str:
    """"[table.sub] key[0]" (or "[table.sub]" for a whole table), as written in the TOML file."""
    names = [*where, *path]
    if not names:
        return "config"
    if table and not any(isinstance(name, int) for name in names):
        return f"[{'.'.join(map(str, names))}]"
    indexes = []
    while names and isinstance(names[-1], int):
        indexes.insert(0, names.pop())
    *table, key = names
    key = str(key) + "".join(f"[{i}]" for i in indexes)
    return f"[{'.'.join(map(str, table))}] {key}" if table else f"[{key}]"


def _name_dict_keys(data: Any, kind: type, path: list, message: str) -> list:
    """Replace each unnamed dict key of `path` by the key whose value alone fails the same way."""
    path = list(path)
    while _KEY in path:
        at = path.index(_KEY)
        table = _value_at(data, path[:at])
        if not isinstance(table, dict):
            break
        for key in table:
            trial = copy.deepcopy(data)
            holder = _value_at(trial, path[:at])
            for other in [k for k in holder if k != key]:
                del holder[other]
            try:
                msgspec.convert(trial, kind)
            except msgspec.ValidationError as exc:
                if str(exc) == message:
                    path[at] = key
                    data = trial
                    break
        else:
            path[at] = "?"
    return path


def _value_at(data: Any, path: list) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _type_at(kind: Any, path: list) -> mi.Type:
    info = mi.type_info(kind) if not isinstance(kind, mi.Type) else kind
    for step in path:
        info = _table_of(info)
        if isinstance(info, mi.StructType):
            info = next((f.type for f in info.fields if f.encode_name == step), mi.AnyType())
        elif isinstance(info, mi.DictType):
            info = info.value_type
        elif isinstance(info, _ARRAYS):
            info = info.item_type
        else:
            return mi.AnyType()
    return info


def _table_of(info: mi.Type) -> mi.Type:
    """The table or array inside an optional (`X | None`)."""
    if isinstance(info, mi.UnionType):
        return next((t for t in info.types if not isinstance(t, mi.NoneType)), info)
    return info


def _field_names(info: mi.Type) -> list[str]:
    info = _table_of(info)
    return [f.encode_name for f in info.fields] if isinstance(info, mi.StructType) else []


def _expected(info: mi.Type) -> str:
    if isinstance(info, mi.UnionType):
        kinds = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return " or ".join(_expected(t) for t in kinds)
    if isinstance(info, _ARRAYS):
        return f"an array of {_plural(info.item_type)}"
    if isinstance(info, mi.DictType):
        return f"a table of {_plural(info.value_type)}"
    if isinstance(info, mi.LiteralType):
        return "one of " + ", ".join(_shown(v) for v in _one_case(info.values))
    return {
        mi.StrType: "a string",
        mi.IntType: "an integer",
        mi.FloatType: "a number",
        mi.BoolType: "true or false",
        mi.StructType: "a table",
    }.get(type(info), "a value")


def _one_case(values: tuple) -> list:
    """A choice offered in upper and lower case (log levels) is shown once, upper."""
    return [v for v in values if not (isinstance(v, str) and v != v.upper() and v.upper() in values)]


def _plural(info: mi.Type) -> str:
    return {
        mi.StrType: "strings",
        mi.IntType: "integers",
        mi.FloatType: "numbers",
        mi.BoolType: "booleans",
        mi.StructType: "tables",
        mi.DictType: "tables",
    }.get(type(_table_of(info)), "values")


def _shown(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
