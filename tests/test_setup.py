"""The Makefile's install step (`make serve` / `make test` on a fresh checkout).

Run against a stand-in Python whose `-m venv` makes a venv of shell scripts: the real install
is minutes of downloads, while what is tested here is only how two makes share it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not (shutil.which("make") and shutil.which("flock")), reason="needs make and flock (util-linux)"
)

# `fake-python -m venv DIR` makes DIR/bin/python (every check passes: torch "already installed")
# and DIR/bin/pip, which notes each call and then waits until the test releases it.
FAKE_PYTHON = """#!/bin/sh
[ "$1" = -m ] && [ "$2" = venv ] || exit 1
mkdir -p "$3/bin"
printf '#!/bin/sh\\nexit 0\\n' > "$3/bin/python"
cat > "$3/bin/pip" <<'PIP'
#!/bin/sh
echo "$*" >> "$PIP_LOG"
while [ ! -e "$PIP_RELEASE" ]; do sleep 0.05; done
PIP
chmod +x "$3/bin/python" "$3/bin/pip"
"""


def _wait_for(condition, what: str, process: subprocess.Popen, limit: float = 60) -> None:
    deadline = time.monotonic() + limit  # only so a broken Makefile fails instead of hanging
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"make exited ({process.returncode}) before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _waits_in_flock(pid: int) -> bool:
    """Whether a `flock` runs among the descendants of process `pid` (read from Linux's /proc)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # gone meanwhile
            continue
        if stat:
            names[int(entry.name)] = stat[stat.index("(") + 1 : stat.rindex(")")]
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    for child, name in names.items():
        ancestor = parents.get(child)
        while ancestor and ancestor != pid:
            ancestor = parents.get(ancestor)
        if ancestor == pid and name == "flock":
            return True
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the waiting flock through /proc")
def test_two_makes_at_once_install_once_and_both_succeed(tmp_path):
    """`make serve &` then `make test` at once: the second make waits for the first one's
    install, then finds the stamp and installs nothing (before, both created the venv and
    ran pip over each other)."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "stand-in"\n')
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(FAKE_PYTHON)
    fake_python.chmod(0o755)
    pip_log, release = tmp_path / "pip.log", tmp_path / "release"
    env = {**os.environ, "PIP_LOG": str(pip_log), "PIP_RELEASE": str(release)}
    env.pop("MAKEFLAGS", None)
    env.pop("CARDGATE_INSTALL_LOCKED", None)
    command = ["make", "--no-print-directory", "install", f"PYTHON={fake_python}", "VENV=venv"]

    def make() -> subprocess.Popen:
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = make()
    second = None
    try:
        _wait_for(lambda: pip_log.exists(), "the first make's pip install", first)
        second = make()
        # The second make has decided the stamp is missing: it is either queued on the lock or,
        # without one, installing too.
        _wait_for(lambda: _waits_in_flock(second.pid) or len(pip_log.read_text().splitlines()) > 1,
                  "the second make to reach the install", second)
        release.touch()
        results = [process.communicate(timeout=60) + (process.returncode,) for process in (first, second)]
    finally:
        release.touch()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert [code for *_, code in results] == [0, 0], results
    assert pip_log.read_text().splitlines() == ["install -q -e .[test]"]  # one install, by the first make
    assert (tmp_path / "venv" / ".cardgate-installed").exists()

