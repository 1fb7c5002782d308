"""The `cardgate` command line: mistakes in `serve`'s address, --version and --help."""
from __future__ import annotations

import importlib.metadata
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main

REPO = Path(__file__).resolve().parent.parent


def serve(*options: str) -> subprocess.CompletedProcess:
    """`cardgate serve OPTIONS` in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", *options],
        cwd=REPO, capture_output=True, text=True, timeout=300,  # the timeout only stops a gateway that did start
    )


@pytest.fixture
def taken_port():
    """A port something else listens on, on 127.0.0.1."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def assert_one_line(result: subprocess.CompletedProcess, *mentions: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert all(mention in lines[0] for mention in mentions), lines
    assert "serving" not in result.stderr + result.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_in_use_says_so_in_one_line(taken_port, workers):
    result = serve("--port", str(taken_port), "--workers", workers)
    assert_one_line(result, f"127.0.0.1:{taken_port}", "already in use")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_an_address_of_another_machine_says_so_in_one_line(workers):
    # 203.0.113.0/24 is TEST-NET-3, never assigned: the bind fails here, nothing is sent.
    result = serve("--host", "203.0.113.1", "--port", "8080", "--insecure", "--workers", workers)
    assert_one_line(result, "203.0.113.1:8080", "not an address of this machine")


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_serve_refuses_a_port_number_out_of_range(port):
    result = serve("--port", port)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [  # one line: argparse's usage block is for --help
        f"cardgate serve: argument --port: {port!r} is not a port number (1-65535) (see cardgate serve --help)"
    ]
    assert "Traceback" not in result.stderr
    assert "serving" not in result.stderr + result.stdout


@pytest.mark.parametrize("argv, says", [
    (["nope"], "cardgate: argument COMMAND: invalid choice: 'nope'"),
    (["scan", "--format", "xml", "x.jpg"], "cardgate scan: argument --format: invalid choice: 'xml'"),
    (["eval"], "cardgate eval: the following arguments are required: LABELS.tsv"),
])
def test_a_command_line_mistake_is_one_line(capsys, argv, says):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(says) and line.endswith("--help)")


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"cardgate {importlib.metadata.version('cardgate')}\n"


def test_help_shows_defaults_for_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    serve_help = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: 127.0.0.1)" in serve_help and "(default: 8080)" in serve_help and "(default: 1)" in serve_help
    with pytest.raises(SystemExit):  # a subcommand added by another module (gateway/migrate)
        main(["compare", "--help"])
    assert "images in flight at once (default: 4)" in " ".join(capsys.readouterr().out.split())


def test_every_option_with_a_default_shows_it_in_help(capsys):
    """Each subcommand's options that default to a value (not None, not an off switch) name it."""
    import argparse

    from gateway.cli import build_parser

    (subparsers,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    missing = []
    for name, parser in subparsers.choices.items():
        text = "".join(parser.format_help().split())  # argparse wraps lines, even after a hyphen
        for action in parser._actions:
            if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
                continue
            if "".join(f"(default: {action.default})".split()) not in text:
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []
