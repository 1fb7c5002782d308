"""Client side of each dialect for migration testing (gateway/migrate/), one module per vendor,
loaded by dialect name; each signs with its adapter's own auth module.

Every module exposes:

    REQUIRED: tuple[str, ...]        settings keys that must be present (the upstream's credentials)
    Shadow                           its `[<dialect>.shadow]` table: core.shadow_table.ShadowTable
                                     plus those credential keys
    request_for_image(image: bytes, base_url: str, settings: dict, now: float) -> WireRequest
        a signed request reading `image`, with every warning check switched on (offline compare)
    resign(req: IncomingRequest, base_url: str, settings: dict, now: float) -> WireRequest
        the client's request, re-addressed to `base_url` and signed with `settings` (shadow mode)
    outcome(reply: Reply) -> Outcome
        the comparable fields of an answer in this dialect (the same parser reads both sides)

`settings` is the `[<dialect>.shadow]` table, or a table of the `--credentials` file.
"""
from __future__ import annotations

import importlib
from types import ModuleType

CLIENTS: dict[str, str] = {
    "tencent": "adapters.migrate.tencent",
    "myqcloud": "adapters.migrate.myqcloud",
    "huawei": "adapters.migrate.huawei",
    "facepp": "adapters.migrate.facepp",
    "hex": "adapters.migrate.hex",
    "baidu": "adapters.migrate.baidu",
    "alibaba": "adapters.migrate.alibaba",
}


def client_for(dialect: str) -> ModuleType:
    try:
        return importlib.import_module(CLIENTS[dialect])
    except KeyError:
        raise ValueError(f"no client for dialect {dialect!r} (known: {', '.join(CLIENTS)})") from None


def shadow_type(dialect: str) -> type | None:
    """The Struct of `[<dialect>.shadow]`; None when shadow mode has no client for `dialect`."""
    return client_for(dialect).Shadow if dialect in CLIENTS else None


def missing_settings(dialect: str, settings: dict) -> list[str]:
    """The required credential keys `settings` lacks for `dialect`."""
    client = client_for(dialect)
    if hasattr(client, "check_settings"):  # alternatives (e.g. AK/SK or a token)
        return client.check_settings(settings)
    return [key for key in client.REQUIRED if not settings.get(key)]
