"""The vendor dialects, one module each, loaded by name.

Every module exposes `create(settings: dict, allow_unsigned: bool) -> Dialect`
(see adapters/base.py). A module that does not exist yet is skipped, so the
gateway runs with whichever dialects are present.
"""
from __future__ import annotations

import importlib
import logging

from adapters.base import Dialect

log = logging.getLogger("cardgate.adapters")

# Vendor table name in the config -> module implementing that dialect.
DIALECTS: dict[str, str] = {
    "tencent": "adapters.tencent",
    "myqcloud": "adapters.myqcloud",
    "huawei": "adapters.huawei",
    "facepp": "adapters.facepp",
    "hex": "adapters.hex",
}


def load_dialects(config: dict, allow_unsigned: bool) -> list[Dialect]:
    """Create every available dialect from its vendor table in `config`.

    A vendor table may say `enabled = false` to leave that dialect out.
    """
    dialects: list[Dialect] = []
    for name, module_name in DIALECTS.items():
        settings = dict(config.get(name) or {})
        if not settings.get("enabled", True):
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # the module exists but one of its imports is missing: a real bug
                raise
            log.debug("dialect %s not available (no module %s)", name, module_name)
            continue
        dialects.append(module.create(settings, allow_unsigned))
    return dialects
