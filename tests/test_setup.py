"""The Makefile's install step (`make serve` / `make test` on a fresh checkout).

How two makes share the install is tested against a stand-in Python whose `-m venv` makes a venv
of shell scripts (seconds). The README's commands themselves, with the real install, serving and
a read, run in a fresh clone in the test marked slow at the end (minutes; `-m "not slow"` skips it).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
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



# --- the README's two commands for real, in a fresh clone (slow: two installs) ------------------

FAST_SUBSET = "-m 'not slow' tests/test_setup.py tests/test_config.py"  # `make test ARGS=...`: seconds
CARD_NUMBER = "6225760088888883"


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """What a newcomer's shell has: no virtualenv, no CARDGATE_*, no make or pytest state. The
    machine's pip settings (PIP_*, pip.conf) stay: they are how this machine reaches an index."""
    venv_bins = {str(Path(sys.prefix) / "bin"), os.environ.get("VIRTUAL_ENV", "") + "/bin"}
    path = [entry for entry in os.environ.get("PATH", os.defpath).split(os.pathsep) if entry not in venv_bins]
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {"PATH": os.pathsep.join(path), "HOME": os.environ.get("HOME", str(tmp_path)), "LANG": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(runtime), "NO_PROXY": "127.0.0.1,localhost"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in ("XDG_CACHE_HOME", "TMPDIR")})
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _synthetic_photo() -> bytes:
    """A rendered card photographed at an angle (engine/synth), as tests/test_console.py reads it."""
    import cv2
    import numpy as np

    from engine.synth.card import render_card
    from engine.synth.scene import photo_of_card

    rng = np.random.default_rng(7)
    card = render_card(rng, number=CARD_NUMBER, layout="4444")
    img, _ = photo_of_card(card.image, rng, size=(900, 700), angle=8, scale=0.8)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


class Served:
    """`make serve ARGS="--port N"` in its own process group, stopped (the whole group) at the end."""

    def __init__(self, clone: Path, env: dict[str, str], port: int, log: Path):
        self.port, self.log = port, log
        self._out = open(log, "wb")
        self.process = subprocess.Popen(["make", "--no-print-directory", "serve", f"ARGS=--port {port}"], cwd=clone,
                                        env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, limit: float) -> dict:
        import httpx

        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"make serve exited ({self.process.returncode}):\n{self.log.read_text()[-4000:]}")
            try:
                answer = httpx.get(f"http://127.0.0.1:{self.port}/_cardgate/health", timeout=5)
                if answer.status_code == 200 and answer.json()["engine"]["ready"]:
                    return answer.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        pytest.fail(f"no healthy gateway on port {self.port} after {limit:.0f} s:\n{self.log.read_text()[-4000:]}")

    def read_card(self, photo: bytes) -> dict:
        """One photo through the Tencent dialect (unsigned: loopback, no credentials configured)."""
        import base64

        import httpx

        answer = httpx.post(f"http://127.0.0.1:{self.port}/", timeout=60,
                            headers={"X-TC-Action": "BankCardOCR", "X-TC-Version": "2018-11-19"},
                            json={"ImageBase64": base64.b64encode(photo).decode()})
        assert answer.status_code == 200, answer.text
        return answer.json()["Response"]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._out.close()


def _make_test(clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "test", f"ARGS={FAST_SUBSET}"], cwd=clone, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("order", ["serve-and-test-together", "test-then-serve"])
def test_the_readme_commands_in_a_fresh_clone(tmp_path, order):
    """The README's `make serve` and `make test` in a fresh `git clone` of this checkout (its
    committed HEAD), in a clean environment, in both orders: `make serve &` then at once `make
    test`, and `make test` then `make serve`. Each serves a gateway whose /_cardgate/health says
    the engine is ready and that reads a synthetic card photo through the Tencent dialect, and
    the install runs once.

    The compromises, to keep this to a few minutes: the clone's `make test` runs a small fast
    subset through the ARGS the Makefile passes to pytest (the suite around this test is the whole
    of it, so running it again inside would double the suite's time), and `make serve` is given a
    free port with ARGS rather than the default 8080, which may be taken. Each order is one real
    install from pip's configured index and the local CPU torch wheel the Makefile prefers
    (/opt/wheels): minutes where the machine has them, a multi-GB download where it has not.
    Measured on a 2-core AMD EPYC: 86 s and 88 s idle, 137 s and 132 s with a training run beside
    it (about 70 s of each is then the install). Deselect with `-m "not slow"`.
    """
    if not shutil.which("git"):
        pytest.skip("needs git")
    clone = tmp_path / "cardgate"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    env = _clean_env(tmp_path)
    photo = _synthetic_photo()
    port = _free_port()
    started = time.monotonic()
    served = None
    try:
        if order == "serve-and-test-together":
            served = Served(clone, env, port, tmp_path / "serve.log")
            tested = _make_test(clone, env)
        else:
            tested = _make_test(clone, env)
            assert tested.returncode == 0, tested.stdout[-4000:]
            served = Served(clone, env, port, tmp_path / "serve.log")
        assert tested.returncode == 0, tested.stdout[-4000:]
        assert re.search(r"^\d+ passed", tested.stdout, re.M), tested.stdout[-2000:]
        health = served.wait_healthy(limit=600)
        assert health["version"] != "unknown" and {d["name"] for d in health["dialects"]} >= {"tencent", "hex"}
        reading = served.read_card(photo)
        assert reading.get("CardNo") == CARD_NUMBER, reading
    finally:
        if served is not None:
            served.stop()
    installs = (tested.stdout + served.log.read_text()).count("pip install -q -e")
    assert installs == 1, (tested.stdout[-3000:], served.log.read_text()[-3000:])
    print(f"{order}: installed, tested and served a read in {time.monotonic() - started:.0f} s")
    shutil.rmtree(clone / ".venv", ignore_errors=True)  # 1.5 GB each; pytest keeps recent tmp_paths
