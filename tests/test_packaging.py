"""What ships: the Docker build context (.dockerignore), the Dockerfile's layers, the image
deploy/k8s.yaml pulls, and the licence."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What make serve/test, npm ci in tests/node and pytest leave in a checkout, and the credentials.
LOCAL_STATE = [".venv/bin/python", ".venv.lock", "cardgate.egg-info/PKG-INFO", "tests/node/node_modules/x/package.json",
               "gateway/__pycache__/app.cpython-311.pyc", "gateway/migrate/__pycache__/x.pyc", ".pytest_cache/v/x",
               "cardgate.toml", "deploy/cardgate.toml", "runs/textrec/log.txt", "build/lib/x.py", ".git/HEAD"]
SHIPPED = ["core/request.py", "gateway/app.py", "adapters/tencent.py", "engine/weights/textrec.pt", "bin_tables/data/bins.json.gz",
           "pyproject.toml", "LICENSE", "deploy/cardgate.example.toml", "gateway/console/static/index.html"]


def docker_patterns() -> list[re.Pattern]:
    """.dockerignore's patterns as Docker reads them (`**` any directories, `*` within one name;
    a directory matched leaves out everything in it)."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not modelled here"
        parts = line.strip("/").split("/")
        regex = ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "**":
                regex += ".*" if last else "(?:[^/]+/)*"
            else:
                regex += "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
                regex += "" if last else "/"
        patterns.append(re.compile(regex + r"(?:/.*)?\Z"))
    return patterns


def left_out(path: str) -> bool:
    return any(pattern.match(path) for pattern in docker_patterns())


@pytest.mark.parametrize("path", LOCAL_STATE)
def test_local_state_and_credentials_stay_out_of_the_build_context(path):
    assert left_out(path), f"{path} would be sent to `docker build`"


@pytest.mark.parametrize("path", SHIPPED)
def test_what_the_image_needs_is_in_the_build_context(path):
    assert not left_out(path)


def test_nothing_git_ignores_here_is_sent_to_docker_build():
    """Whatever this checkout holds that git ignores (a venv, caches, node_modules...)."""
    ignored = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert [path for path in ignored if not left_out(path.rstrip("/"))] == []


def test_the_dockerfile_caches_dependencies_apart_from_the_code():
    joined = re.sub(r"\\\n\s*", " ", (ROOT / "deploy/Dockerfile").read_text())  # continuation lines
    text = [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]
    first_code = min(i for i, step in enumerate(text) if re.match(r"COPY (core|gateway|adapters|engine|bin_tables)\b", step))
    torch = next(i for i, step in enumerate(text) if step.startswith("RUN pip install") and "torch==" in step)
    deps = next(i for i, step in enumerate(text) if step.startswith("RUN") and "pip install --no-cache-dir -r" in step)
    assert torch < deps < first_code  # torch, then the other dependencies, then the code
    assert [step for step in text[:deps] if step.startswith("COPY")] == ["COPY pyproject.toml ./"]  # only what they are made from
    assert any(step.startswith("RUN pip install") and "--no-deps ." in step for step in text[first_code:])
    assert "torch==2.13.0" in text[torch] and '"torch==2.13.0"' in (ROOT / "pyproject.toml").read_text()


def test_the_deployment_pulls_a_versioned_image_from_a_registry():
    import yaml

    documents = list(yaml.safe_load_all((ROOT / "deploy/k8s.yaml").read_text()))
    (deployment,) = [d for d in documents if d and d.get("kind") == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    registry, _, tag = container["image"].rpartition(":")
    assert "/" in registry and "." in registry.split("/")[0], "a registry host a cluster can pull from"
    assert tag and tag != "latest" and container["imagePullPolicy"] == "IfNotPresent"
    assert f"set that reference on the Deployment's `image:` line" in (ROOT / "README.md").read_text()


def test_the_licence_is_the_one_the_package_declares():
    import tomllib

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
    assert "Apache License\n                           Version 2.0" in (ROOT / "LICENSE").read_text()
    assert "## License\n\nApache-2.0 ([LICENSE](LICENSE))" in (ROOT / "README.md").read_text()
