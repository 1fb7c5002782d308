"""The keys every `[<dialect>.shadow]` table shares (gateway/migrate/settings.py documents them);
each migration client (adapters/migrate/<dialect>.py) extends it with its upstream's credentials."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

import msgspec

ANSWERS = ("upstream", "local")
ON_FAILURE = ("local", "error")


class ShadowTable(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """[<dialect>.shadow]: the keys every dialect shares. A client's subclass adds its credentials."""

    upstream: str = ""
    answer: Literal[ANSWERS] = "upstream"  # type: ignore[valid-type]
    timeout_s: Annotated[float, msgspec.Meta(ge=0.001)] = 10.0
    on_upstream_failure: Literal[ON_FAILURE] = "local"  # type: ignore[valid-type]
    enabled: bool = True

    REQUIRED: ClassVar[tuple[str, ...]] = ()  # credential keys that must be non-empty

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        parts = urlsplit(self.upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream must be an http(s) URL, got {self.upstream!r}")
        missing = self.missing_credentials()
        if missing:
            raise ValueError(f"needs the upstream's credentials: {', '.join(missing)}")

    def missing_credentials(self) -> list[str]:
        return [key for key in self.REQUIRED if not getattr(self, key)]
