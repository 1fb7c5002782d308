"""`GET /_cardgate/health`: what this gateway is and serves, in one JSON object.

Version, the engine's weights (a sha256 prefix per file, hashed once when the app is built) and
readiness, each dialect with its paths and how its callers are checked, the engine queue and the
rate limits. Per-credential rate limits are counted, not listed: key ids stay in the config.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
from pathlib import Path
from typing import Any

WEIGHT_ID_CHARS = 12  # hex digits of sha256 shown per weights file: enough to tell builds apart


def package_version() -> str:
    try:
        return importlib.metadata.version("cardgate")
    except importlib.metadata.PackageNotFoundError:  # run from a tree that is not installed
        return "unknown"


def default_weights_dir() -> Path:
    return Path(str(importlib.resources.files("engine") / "weights"))


def weight_ids(weights_dir: Path | None = None) -> dict[str, str]:
    """File name -> "sha256:<prefix>" for each *.pt of the engine's weights."""
    folder = weights_dir or default_weights_dir()
    ids = {}
    for path in sorted(folder.glob("*.pt")):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        ids[path.name] = "sha256:" + digest.hexdigest()[:WEIGHT_ID_CHARS]
    return ids


def dialect_paths(dialect) -> dict[str, list[dict[str, Any]]]:
    """Its routes split into native paths and those under its own prefix (/<name>/...). A dialect
    whose every path is under its prefix (its native path is that one) lists them in both."""
    prefix = f"/{dialect.name}"
    native, prefixed = [], []
    for path, methods in dialect.routes():
        entry = {"path": path, "methods": sorted(methods)}
        (prefixed if path == prefix or path.startswith(prefix + "/") else native).append(entry)
    return {"native": native or prefixed, "prefixed": prefixed}


def auth_mode(dialect) -> str:
    lookup = getattr(dialect, "auth_mode", None)
    return lookup() if lookup is not None else "unknown"


def health(gateway, weights: dict[str, str], version: str) -> dict[str, Any]:
    config = gateway.config
    runner = gateway.runner
    rate = config.rate_limits
    return {
        "version": version,
        "engine": {"ready": gateway.ready, "weights": weights, "threads": runner.threads,
                   "queue_size": runner.queue_size, "running": runner.running, "queued": runner.queued},
        "dialects": [
            {"name": d.name, "auth": auth_mode(d), **dialect_paths(d)} for d in gateway.dialects
        ],
        "rate_limits": {"per_second": rate.per_second, "burst": rate.burst,
                        "per_credential_overrides": len(rate.credentials)},
        "draining": gateway.draining,
    }
