"""The gateway's configuration: one TOML file decoded into typed tables.

Every table is a msgspec Struct that refuses keys it does not define. The
gateway's own tables are below; each vendor table is its adapter's `Settings`
(adapters/<name>.py), with a `shadow` table added where shadow mode has a
client for that vendor (adapters/migrate/<name>.py). README.md's
"Configuration" section lists every key; tests/test_config.py holds the two
to each other.

A key that is unknown, of the wrong type or out of range is a ConfigError whose
message is one line: `cardgate.toml: [huawei] tokens: expected an array of
strings, got a string`.
"""
from __future__ import annotations

import functools
import tomllib
from typing import Annotated, Any, Literal

import msgspec

from gateway.migrate.settings import ShadowOptions
from core.validation import ConfigError, convert

__all__ = ["Config", "ConfigError", "load_config", "parse_config", "with_defaults", "dialect_tables"]

NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LOG_LEVEL_NAMES = LOG_LEVELS + tuple(level.lower() for level in LOG_LEVELS)


class Table(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    pass


class Fetch(Table):
    allow_private: bool = False  # image URLs to private/loopback/link-local/metadata addresses
    user_agent: str = "cardgate/0.1"


class EngineTable(Table):
    threads: Annotated[int, msgspec.Meta(ge=1)] = 1  # engine reads running at once
    queue_size: NonNegativeInt = 8  # reads waiting; more -> each vendor's busy error
    nice: Annotated[int, msgspec.Meta(ge=0, le=19)] = 19  # engine threads run this much below the event loop
    blur_floor: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0  # quality below this is the blurred-image error; 0: off


class Limits(Table):
    max_body_bytes: NonNegativeInt = 0  # cap on every dialect's own body limit; 0: each dialect's own


class RateLimits(Table):
    per_second: NonNegativeFloat = 0.0  # per credential; 0: no limit (gateway/ratelimit.py)
    burst: NonNegativeInt = 0  # bucket size; 0: max(1, per_second)
    credentials: dict[str, NonNegativeFloat] = {}  # per key id, overrides per_second


class Server(Table):
    drain_timeout_s: NonNegativeFloat = 30.0  # graceful shutdown: wait for in-flight requests
    # A client that sends its headers and then stops holds a connection and a request slot: the
    # body is given up when no byte of it arrives for this long (core/body.py read_body).
    body_timeout_s: PositiveFloat = 10.0


class Replay(Table):
    # The file every worker records single-use signatures and nonces in (core/replay.py);
    # "": $XDG_RUNTIME_DIR/cardgate/replay.sqlite3, else /tmp/cardgate-<uid>/replay.sqlite3.
    path: str = ""
    # Gateways on many machines: one Redis they all reach instead of the file (redis://host:6379/0,
    # rediss:// for TLS, unix:///path); "": the file. Unreachable: those requests are refused.
    redis_url: str = ""
    # Connect and reply timeout of each Redis check; it holds the event loop, so it is kept short.
    redis_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=5)] = 0.25

    def __post_init__(self) -> None:
        if self.redis_url:
            from core.replay import check_redis_url

            check_redis_url(self.redis_url)
            if self.path:
                raise ValueError("path (the SQLite file) and redis_url: set one store, not both")


class Metrics(Table):
    enabled: bool = True  # GET /metrics
    server_timing: bool = False  # Server-Timing header (fetch, queue, engine, app)


class Log(Table):
    level: Literal[_LOG_LEVEL_NAMES] = "INFO"  # type: ignore[valid-type]
    format: Literal["json", "text"] = "json"  # json: one object per line, for log collectors; text: for a terminal


class Console(Table):
    # The web console and /_cardgate/health (gateway/console/). Absent: on only when bound to
    # loopback. Bound elsewhere it is on only with enabled = true and a password or token.
    enabled: bool | None = None
    password: str = ""  # HTTP Basic (any user name); checked in constant time
    token: str = ""  # Authorization: Bearer <token>
    per_second: NonNegativeFloat = 5.0  # console requests per second, all clients together; 0: no limit
    burst: NonNegativeInt = 20  # bucket size (a page load is a handful of requests)


class GatewayTables(Table):
    """The tables that are the gateway's own."""

    fetch: Fetch = Fetch()
    engine: EngineTable = EngineTable()
    limits: Limits = Limits()
    rate_limits: RateLimits = RateLimits()
    server: Server = Server()
    replay: Replay = Replay()
    metrics: Metrics = Metrics()
    log: Log = Log()
    console: Console = Console()
    shadow: ShadowOptions = ShadowOptions()


class Config(GatewayTables):
    """The whole file: the gateway's tables, and each loadable dialect's settings by table name."""

    dialects: dict[str, Any] = {}


def load_config(path: str | None) -> Config:
    """Read `path` (TOML) into a Config, defaults filled in. No path: defaults only."""
    if path is None:
        return parse_config({})
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_config(data, source=path)


def with_defaults(config: dict | Config) -> Config:
    """`config` as a Config: a dict (the parsed TOML, or one built in Python) is checked through the Structs."""
    return config if isinstance(config, Config) else parse_config(config)


def parse_config(data: Any, source: str | None = None) -> Config:
    """The parsed TOML `data` as a Config; ConfigError (prefixed with `source`) when it does not fit."""
    try:
        return _parse(data)
    except ConfigError as exc:
        if source is None:
            raise
        raise ConfigError(f"{source}: {exc}") from None


def _parse(data: Any) -> Config:
    if not isinstance(data, dict):
        raise ConfigError("config must be a table")
    tables = dialect_tables()
    own = GatewayTables.__struct_fields__
    for name in data:
        if name not in own and name not in tables:
            raise ConfigError(f"unknown table [{name}] (tables: {', '.join([*own, *tables])})")
    gateway = convert({k: v for k, v in data.items() if k in own}, GatewayTables)
    dialects = {name: convert(data.get(name, {}), kind, (name,)) for name, kind in tables.items()}
    return Config(**msgspec.structs.asdict(gateway), dialects=dialects)


def dialect_tables() -> dict[str, Any]:
    """Table name -> the Struct its table decodes to, for every dialect that can be loaded."""
    from adapters import DIALECTS

    return _dialect_tables(tuple(DIALECTS.items()))


@functools.cache
def _dialect_tables(registry: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    from adapters import settings_type
    from adapters.migrate import shadow_type

    tables: dict[str, Any] = {}
    for name, module_name in registry:
        kind = settings_type(module_name)
        if kind is None:  # no such module: that dialect is not part of this install
            continue
        shadow = shadow_type(name)
        if shadow is not None:
            kind = msgspec.defstruct(
                kind.__name__,
                [("shadow", shadow | None, None)],
                bases=(kind,),
                module=kind.__module__,
                kw_only=True,
                forbid_unknown_fields=True,
                frozen=True,
            )
        tables[name] = kind
    return tables


def has_credentials(config: Config, dialect: str) -> bool:
    """True when `dialect`'s table configures any way of authenticating callers."""
    settings = config.dialects.get(dialect)
    return settings is not None and settings.has_credentials()


def enabled_dialects(config: Config) -> list[str]:
    return [name for name, settings in config.dialects.items() if settings.enabled]


def dialects_without_credentials(config: Config) -> list[str]:
    return [name for name in enabled_dialects(config) if not has_credentials(config, name)]
