"""The config as typed data: every table a Struct, every mistake one line naming the file and key.

A string where a list is meant used to become one credential per character
(`[huawei] tokens = "opaque-token-1"` accepted `X-Auth-Token: o`), and unknown
keys and tables were ignored. Both now stop the config at load, before any model.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec.inspect as mi
import pytest
import tomllib

from adapters import facepp, hex as hexmod, huawei, myqcloud
from gateway.app import create_app
from gateway.cli import main
from gateway.config import Config, ConfigError, GatewayTables, dialect_tables, load_config
from tests.fakes import FakeEngine

REPO = Path(__file__).resolve().parent.parent

# (file text, the one line it must be refused with)
REFUSED = [
    # a string for a list: never one credential per character
    ('[huawei]\ntokens = "opaque-token-1"', "[huawei] tokens: expected an array of strings, got a string"),
    ('[hex]\ntokens = "hex-token"', "[hex] tokens: expected an array of strings, got a string"),
    ('[facepp]\ndisabled_keys = "fpp-old-key"', "[facepp] disabled_keys: expected an array of strings, got a string"),
    # unknown keys and tables
    ("[engine]\nthread = 4", "[engine] thread: unknown key (keys: threads, queue_size, nice, blur_floor)"),
    ("[enigne]\nthreads = 4", "unknown table [enigne] (tables: "),
    ('[tencent.credential]\nAKIDEXAMPLE = "secret"', "[tencent] credential: unknown key (keys: credentials, enabled, shadow)"),
    ('[tencent.shadow]\nupstream = "https://ocr.tencentcloudapi.com"\nsecret_id = "a"\nsecret_key = "b"\nregoin = "x"',
     "[tencent.shadow] regoin: unknown key (keys: "),
    # wrong types, missing keys, out of range: found at load, not when the dialect is built
    ("[hex]\ntoken = 123", "[hex] token: expected a string, got an integer"),
    ('[myqcloud.apps.1250000000]\nsecret_id = "AKIDMYQ"', "[myqcloud.apps.1250000000] secret_key: missing, expected a string"),
    ('[myqcloud.apps.1250000000]\nsecret_id = "AKIDMYQ"\nsecret_key = "k"\nbuckets = "b"',
     "[myqcloud.apps.1250000000] buckets: expected an array of strings, got a string"),
    ('[huawei]\ntokens = [""]', '[huawei] tokens[0]: expected a string of length >= 1, got ""'),
    ("[engine]\nthreads = 0", "[engine] threads: expected an integer >= 1, got 0"),
    ("[engine]\nqueue_size = true", "[engine] queue_size: expected an integer, got a boolean"),
    ("[server]\nbody_timeout_s = 0", "[server] body_timeout_s: expected a number > 0.0, got 0"),
    ("fetch = 3", "[fetch]: expected a table, got an integer"),
    ('[rate_limits.credentials]\nAKID = "fast"', "[rate_limits.credentials] AKID: expected a number, got a string"),
    ('[log]\nlevel = "LOUD"', '[log] level: expected one of "CRITICAL", "DEBUG", "ERROR", "INFO", "WARNING", got "LOUD"'),
    ('[huawei.shadow]\nupstream = "https://ocr.example.com"', "[huawei.shadow]: needs the upstream's credentials: access_key, secret_key"),
]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARDGATE_CONFIG", raising=False)
    return tmp_path


def write(folder: Path, text: str, name: str = "cardgate.toml") -> str:
    (folder / name).write_text(text)
    return name


@pytest.mark.parametrize("text, line", REFUSED, ids=[line.split(":")[0] for _, line in REFUSED])
def test_a_mistake_is_refused_at_load_in_one_line_naming_file_and_key(in_tmp, text, line):
    with pytest.raises(ConfigError) as refused:
        load_config(write(in_tmp, text))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"cardgate.toml: {line}"), message


@pytest.mark.parametrize(
    "table",
    [{"huawei": {"tokens": "opaque-token-1"}}, {"hex": {"tokens": "hex-token"}}, {"facepp": {"disabled_keys": "fpp-old-key"}}],
)
def test_a_string_for_a_list_is_refused_by_create_app_too(table):
    with pytest.raises(ConfigError, match="expected an array of strings, got a string"):
        create_app(table, FakeEngine())


def test_a_dialect_built_from_a_dict_checks_it_through_its_settings():
    with pytest.raises(ValueError, match=re.escape("[huawei] tokens: expected an array of strings")):
        huawei.create({"tokens": "opaque-token-1"}, allow_unsigned=False)
    with pytest.raises(ValueError, match=re.escape("[hex] tokens")):
        hexmod.create({"tokens": "hex-token"}, allow_unsigned=False)
    with pytest.raises(ValueError, match=re.escape("[facepp] disabled_keys")):
        facepp.create({"credentials": {"k": "s"}, "disabled_keys": "k"}, allow_unsigned=False)
    with pytest.raises(ValueError, match=re.escape("[myqcloud.apps.125] secret_key: missing")):
        myqcloud.create({"apps": {"125": {"secret_id": "AKID"}}}, allow_unsigned=False)


def test_a_valid_file_gives_typed_tables(in_tmp):
    config = load_config(write(in_tmp, '[huawei]\ntokens = ["opaque-token-1"]\n[engine]\nthreads = 4\n[log]\nlevel = "debug"'))
    assert isinstance(config, Config)
    assert config.engine.threads == 4 and config.log.level == "debug"
    assert config.dialects["huawei"].tokens == ["opaque-token-1"]
    assert isinstance(config.dialects["huawei"], huawei.Settings)


# --- the command line ------------------------------------------------------------------------------


def test_check_config_says_ok_for_a_valid_file(in_tmp, capsys):
    assert main(["check-config", write(in_tmp, '[hex]\ntoken = "hex-token"')]) == 0
    out = capsys.readouterr()
    assert out.out == "ok\n" and out.err == ""


def test_check_config_refuses_with_exit_2_and_one_line(in_tmp, capsys):
    assert main(["check-config", write(in_tmp, '[huawei]\ntokens = "opaque-token-1"')]) == 2
    out = capsys.readouterr()
    assert out.err == "cardgate.toml: [huawei] tokens: expected an array of strings, got a string\n"
    assert out.out == ""


def test_check_config_reads_cardgate_config_when_no_file_is_given(in_tmp, capsys, monkeypatch):
    monkeypatch.setenv("CARDGATE_CONFIG", write(in_tmp, "[engine]\nthread = 4", "from-env.toml"))
    assert main(["check-config"]) == 2
    assert capsys.readouterr().err.startswith("from-env.toml: [engine] thread: unknown key")


def test_serve_refuses_a_bad_config_before_the_model_loads(in_tmp, capsys, monkeypatch):
    import engine

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(engine.Engine, "load", no_model)
    assert main(["serve", "--config", write(in_tmp, "[enigne]\nthreads = 4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cardgate.toml: unknown table [enigne]")


def test_serve_in_a_process_of_its_own_takes_the_config_from_cardgate_config(in_tmp):
    path = write(in_tmp, '[tencent.credential]\nAKIDEXAMPLE = "secret"')
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", "1"],
        cwd=in_tmp, env={"CARDGATE_CONFIG": path, "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,  # the timeout only stops a gateway that did start
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "cardgate.toml: [tencent] credential: unknown key (keys: credentials, enabled, shadow)\n"


# --- the README's reference --------------------------------------------------------------------------


def readme_config() -> dict:
    """The TOML block of the README's "Configuration" section, parsed."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Configuration section has one TOML reference block"
    return tomllib.loads(blocks[0])


def struct_keys(kind) -> set[str]:
    return {f.encode_name for f in mi.type_info(kind).fields}


def tables_of(kind) -> dict[str, type]:
    """The fields of `kind` that are tables of their own (a Struct, or a table of Structs)."""
    out = {}
    for field in mi.type_info(kind).fields:
        info = field.type
        if isinstance(info, mi.UnionType):
            info = next(t for t in info.types if not isinstance(t, mi.NoneType))
        if isinstance(info, mi.StructType):
            out[field.encode_name] = info.cls
        elif isinstance(info, mi.DictType) and isinstance(info.value_type, mi.StructType):
            out[field.encode_name + ".*"] = info.value_type.cls
    return out


def assert_documents(doc: dict, kind, where: str) -> None:
    assert set(doc) == struct_keys(kind), f"[{where}]: README keys {sorted(doc)} != {sorted(struct_keys(kind))}"
    for name, sub in tables_of(kind).items():
        if name.endswith(".*"):
            entries = doc[name[:-2]]
            assert entries, f"[{where}.{name[:-2]}] needs an example entry"
            for key, entry in entries.items():
                assert_documents(entry, sub, f"{where}.{name[:-2]}.{key}")
        else:
            assert_documents(doc[name], sub, f"{where}.{name}")


def test_readme_config_reference_lists_exactly_the_keys_of_the_structs():
    doc = readme_config()
    typed = dialect_tables()
    assert set(doc) == set(GatewayTables.__struct_fields__) | set(typed), "README tables"
    for name, kind in [*tables_of(GatewayTables).items(), *typed.items()]:
        assert_documents(doc[name], kind, name)


def test_readme_config_reference_is_itself_a_valid_config(tmp_path):
    from gateway.config import parse_config

    parse_config(readme_config(), source="README.md")
