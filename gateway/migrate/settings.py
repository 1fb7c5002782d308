"""Shadow-mode settings: the [shadow] table and each `[<dialect>.shadow]` table, as Structs.

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
    ...the upstream's credentials, in that vendor's terms: each client module
    (adapters/migrate/<dialect>.py) declares them in its `Shadow`, a subclass of core.shadow_table.ShadowTable.

gateway/config.py adds a `shadow` key of that type to the dialect's table, so
every mistake here is found when the config is read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]


class ShadowOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """[shadow]"""

    queue_size: AtLeastOne = 64
    workers: AtLeastOne = 2
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


def read_options(config: Any) -> ShadowOptions:
    return config.shadow


def read_dialect(config: Any, dialect: str) -> DialectShadow | None:
    """The `[<dialect>.shadow]` table of a gateway.config.Config; None when absent or disabled."""
    table = getattr(config.dialects.get(dialect), "shadow", None)
    if table is None or not table.enabled:
        return None
    return DialectShadow(
        dialect=dialect,
        upstream=table.upstream,
        answer=table.answer,
        timeout_s=table.timeout_s,
        on_upstream_failure=table.on_upstream_failure,
        credentials=msgspec.structs.asdict(table),
    )
