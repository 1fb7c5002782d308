"""Shadow-mode settings, read from the config and checked.

    [shadow]                          shared by every dialect (all optional)
    queue_size = 64                   mirrored jobs waiting; more are dropped (and counted)
    workers = 2                       mirrored jobs running at once
    records = "cardgate-shadow.jsonl" where comparisons go; .sqlite/.sqlite3/.db: SQLite; "": not recorded
    images_dir = ""                   keep the image of each compared request there ("": never)

    [<dialect>.shadow]                one per dialect to shadow
    upstream = "https://ocr.tencentcloudapi.com"   the vendor's endpoint (base URL)
    answer = "upstream"               who answers the client: "upstream" (evaluating) or "local"
    timeout_s = 10.0                  whole upstream exchange
    on_upstream_failure = "local"     answer="upstream" and nothing came back: "local" answers, or "error"
    enabled = true
    ...the upstream's credentials, in that vendor's terms (see gateway/migrate/vendors/<dialect>.py):
      tencent: secret_id, secret_key [, region]     huawei: access_key, secret_key | token [, project_id]
      myqcloud: appid, secret_id, secret_key [, bucket]   facepp: api_key, api_secret   hex: [token, token_header]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gateway.config import ConfigError
from gateway.migrate.vendors import CLIENTS, missing_settings

ANSWERS = ("upstream", "local")
ON_FAILURE = ("local", "error")


@dataclass(frozen=True)
class ShadowOptions:
    queue_size: int = 64
    workers: int = 2
    records: str = "cardgate-shadow.jsonl"
    images_dir: str = ""


@dataclass(frozen=True)
class DialectShadow:
    dialect: str
    upstream: str
    answer: str = "upstream"
    timeout_s: float = 10.0
    on_upstream_failure: str = "local"
    credentials: dict = field(default_factory=dict)  # the whole table: each client reads its own keys


def _number(table: dict, key: str, default, where: str, minimum):
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where}.{key} must be a number >= {minimum}, got {value!r}")
    return value


def read_options(config: dict) -> ShadowOptions:
    table = config.get("shadow") or {}
    if not isinstance(table, dict):
        raise ConfigError("[shadow] must be a table")
    for key in ("records", "images_dir"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"shadow.{key} must be a string")
    return ShadowOptions(
        queue_size=int(_number(table, "queue_size", 64, "shadow", 1)),
        workers=int(_number(table, "workers", 2, "shadow", 1)),
        records=table.get("records", ShadowOptions.records),
        images_dir=table.get("images_dir", ""),
    )


def read_dialect(config: dict, dialect: str) -> DialectShadow | None:
    """The `[<dialect>.shadow]` table, checked; None when absent or disabled."""
    table = (config.get(dialect) or {}).get("shadow")
    if table is None:
        return None
    where = f"{dialect}.shadow"
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table")
    if not table.get("enabled", True):
        return None
    if dialect not in CLIENTS:
        raise ConfigError(f"[{where}]: shadow mode has no client for {dialect}")
    upstream = table.get("upstream")
    if not isinstance(upstream, str) or urlsplit(upstream).scheme not in ("http", "https") or not urlsplit(upstream).netloc:
        raise ConfigError(f"{where}.upstream must be an http(s) URL, got {upstream!r}")
    answer = table.get("answer", "upstream")
    if answer not in ANSWERS:
        raise ConfigError(f"{where}.answer must be one of {', '.join(ANSWERS)}, got {answer!r}")
    on_failure = table.get("on_upstream_failure", "local")
    if on_failure not in ON_FAILURE:
        raise ConfigError(f"{where}.on_upstream_failure must be one of {', '.join(ON_FAILURE)}, got {on_failure!r}")
    missing = missing_settings(dialect, table)
    if missing:
        raise ConfigError(f"[{where}] needs the upstream's credentials: {', '.join(missing)}")
    return DialectShadow(
        dialect=dialect,
        upstream=upstream,
        answer=answer,
        timeout_s=float(_number(table, "timeout_s", 10.0, where, 0.001)),
        on_upstream_failure=on_failure,
        credentials=dict(table),
    )
