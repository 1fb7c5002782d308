"""The vendor dialects, one module each, loaded by name.

Every module exposes `Settings` (its config table, a subclass of
adapters.base.DialectSettings) and `create(settings: Settings, allow_unsigned: bool)
-> Dialect` (see adapters/base.py). A module that does not exist yet is skipped,
so the gateway runs with whichever dialects are present.
"""
from __future__ import annotations

import importlib
import logging
from types import ModuleType

from adapters.base import Dialect, DialectSettings

log = logging.getLogger("cardgate.adapters")

# Vendor table name in the config -> module implementing that dialect.
DIALECTS: dict[str, str] = {
    "tencent": "adapters.tencent",
    "myqcloud": "adapters.myqcloud",
    "huawei": "adapters.huawei",
    "facepp": "adapters.facepp",
    "hex": "adapters.hex",
    "baidu": "adapters.baidu",
    "alibaba": "adapters.alibaba",  # after tencent: both serve POST /, see gateway/app.py _endpoint
}


def dialect_module(module_name: str) -> ModuleType | None:
    """The module, or None when it does not exist (that dialect is not installed)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # the module exists but one of its imports is missing: a real bug
            raise
        log.debug("dialect module %s not available", module_name)
        return None


def settings_type(module_name: str) -> type[DialectSettings] | None:
    """The Struct a dialect's config table decodes to; None when the module does not exist."""
    module = dialect_module(module_name)
    if module is None:
        return None
    kind = getattr(module, "Settings", None)
    if not (isinstance(kind, type) and issubclass(kind, DialectSettings)):
        raise TypeError(f"{module_name}.Settings must be a subclass of adapters.base.DialectSettings")
    return kind


def load_dialects(config, allow_unsigned: bool) -> list[Dialect]:
    """Create every enabled dialect from its table of `config` (a gateway.config.Config).

    A vendor table may say `enabled = false` to leave that dialect out.
    """
    dialects: list[Dialect] = []
    for name, settings in config.dialects.items():
        module = dialect_module(DIALECTS[name]) if name in DIALECTS else None
        if module is None or not settings.enabled:
            continue
        dialects.append(module.create(settings, allow_unsigned))
    return dialects
