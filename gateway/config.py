"""The gateway's configuration: one TOML file read into a plain dict with defaults.

Layout (every table optional):

    [tencent] [myqcloud] [huawei] [facepp] [hex]   per-vendor tables, handed to
                                                    adapters/<name>.create() as is
    [fetch]   allow_private = false                 image URLs to private addresses
              user_agent = "cardgate/0.1"
    [engine]  threads = 1                           engine reads running at once
              queue_size = 8                        reads waiting; more -> busy error
              nice = 19                             engine threads run this much below the event loop (0-19)
    [limits]  max_body_bytes = 0                    0: each dialect's own limit
    [rate_limits] per_second = 0.0                  per credential, 0: no limit (gateway/ratelimit.py)
              burst = 0                             bucket size, 0: max(1, per_second)
              [rate_limits.credentials] KEY = 5.0   per key id, overrides per_second
    [server]  drain_timeout_s = 30.0                graceful shutdown: wait for in-flight requests
    [metrics] enabled = true                        GET /metrics (Prometheus text format)
              server_timing = false                 Server-Timing header (fetch, queue, engine, app)
    [log]     level = "INFO"
"""
from __future__ import annotations

import copy
import tomllib
from typing import Any

VENDORS = ("tencent", "myqcloud", "huawei", "facepp", "hex")

DEFAULTS: dict[str, Any] = {
    "fetch": {"allow_private": False, "user_agent": "cardgate/0.1"},
    "engine": {"threads": 1, "queue_size": 8, "nice": 19, "blur_floor": 0},
    "limits": {"max_body_bytes": 0},
    "rate_limits": {"per_second": 0.0, "burst": 0, "credentials": {}},
    "server": {"drain_timeout_s": 30.0},
    "metrics": {"enabled": True, "server_timing": False},
    "log": {"level": "INFO"},
}

# (table, key) -> expected type, for the gateway's own keys. Vendor tables are the adapters' business.
_TYPES: dict[tuple[str, str], type | tuple[type, ...]] = {
    ("fetch", "allow_private"): bool,
    ("fetch", "user_agent"): str,
    ("engine", "threads"): int,
    ("engine", "queue_size"): int,
    ("engine", "nice"): int,
    ("engine", "blur_floor"): int,
    ("limits", "max_body_bytes"): int,
    ("rate_limits", "per_second"): (int, float),
    ("rate_limits", "burst"): int,
    ("rate_limits", "credentials"): dict,
    ("server", "drain_timeout_s"): (int, float),
    ("metrics", "enabled"): bool,
    ("metrics", "server_timing"): bool,
    ("log", "level"): str,
}
_MINIMUM = {
    ("engine", "threads"): 1,
    ("engine", "queue_size"): 0,
    ("engine", "nice"): 0,
    ("limits", "max_body_bytes"): 0,
    ("rate_limits", "per_second"): 0,
    ("rate_limits", "burst"): 0,
    ("server", "drain_timeout_s"): 0,
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """The config file is unreadable or a key has the wrong type; the message names the key."""


def load_config(path: str | None) -> dict:
    """Read `path` (TOML) and return it with defaults filled in. No path: defaults only."""
    if path is None:
        return with_defaults({})
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return with_defaults(data)


def with_defaults(config: dict) -> dict:
    """A validated copy of `config` with every gateway default filled in."""
    if not isinstance(config, dict):
        raise ConfigError("config must be a table")
    merged = copy.deepcopy(DEFAULTS)
    for key, value in config.items():
        if key in DEFAULTS:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table")
            merged[key].update(value)
        else:
            merged[key] = copy.deepcopy(value)
    for vendor in VENDORS:
        table = merged.setdefault(vendor, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{vendor}] must be a table")
    _validate(merged)
    return merged


def _validate(config: dict) -> None:
    for (table, key), expected in _TYPES.items():
        value = config[table].get(key)
        # bool is an int in Python: refuse true/false where a number is meant
        numeric = expected is int or (isinstance(expected, tuple) and int in expected)
        if not isinstance(value, expected) or (numeric and isinstance(value, bool)):
            name = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
            raise ConfigError(f"{table}.{key} must be {name}, got {value!r}")
        minimum = _MINIMUM.get((table, key))
        if minimum is not None and value < minimum:
            raise ConfigError(f"{table}.{key} must be >= {minimum}, got {value}")
    for key, rate in config["rate_limits"]["credentials"].items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
            raise ConfigError(f"rate_limits.credentials.{key} must be a number >= 0 (requests per second)")
    if config["log"]["level"].upper() not in _LOG_LEVELS:
        raise ConfigError(f"log.level must be one of {', '.join(_LOG_LEVELS)}")
    for vendor in VENDORS:
        table = config[vendor]
        creds = table.get("credentials")
        if creds is not None:
            if not isinstance(creds, dict) or not all(isinstance(v, str) for v in creds.values()):
                raise ConfigError(f"{vendor}.credentials must be a table of key id = \"secret\" strings")
        if "enabled" in table and not isinstance(table["enabled"], bool):
            raise ConfigError(f"{vendor}.enabled must be bool")


def has_credentials(config: dict, vendor: str) -> bool:
    """True when `vendor`'s table configures any way of authenticating callers."""
    table = config.get(vendor) or {}
    return any(bool(table.get(key)) for key in ("credentials", "tokens", "token", "apps"))


def vendors_without_credentials(config: dict) -> list[str]:
    return [v for v in VENDORS if (config.get(v) or {}).get("enabled", True) and not has_credentials(config, v)]
