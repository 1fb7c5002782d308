"""One request as the gateway hands it to a dialect, and what the dialect asks of the engine."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.types import ReadOptions


@dataclass
class IncomingRequest:
    """One HTTP request exactly as received: signatures are checked over these bytes."""

    method: str
    path: str  # decoded path, e.g. "/v2/abc/ocr/bankcard"
    raw_path: bytes  # path as sent, percent-encoding kept
    query_string: bytes  # raw query string, without "?"
    headers: list[tuple[str, str]]  # in order, names lower-cased, values as sent
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)
    client_host: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass
class ImageSource:
    """Where the image comes from. Exactly one of `data` and `url` is set."""

    data: bytes | None = None
    url: str | None = None


@dataclass
class EngineCall:
    """What the dialect asks of the engine, plus what it needs to render the answer."""

    image: ImageSource
    options: ReadOptions
    context: dict[str, Any] = field(default_factory=dict)  # dialect-private (session_id, api version...)
    credential: str | None = None  # key id that signed the request, for rate limits and logs


def console_request(method: str, path: str, headers: dict[str, str], body: bytes = b"", query: bytes = b"",
                    path_params: dict[str, str] | None = None) -> IncomingRequest:
    """An IncomingRequest built in-process (Dialect.console_request), as the server would hand it over."""
    return IncomingRequest(
        method=method,
        path=path,
        raw_path=path.encode("utf-8"),
        query_string=query,
        headers=[(name.lower(), value) for name, value in headers.items()] + [("content-length", str(len(body)))],
        body=body,
        path_params=path_params or {},
        client_host="127.0.0.1",
    )
