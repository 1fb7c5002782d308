"""A dialect's error table: every answer it gives for a failure, as data of one shape.

Each dialect has one ErrorTable of ErrorEntry rows, keyed by what its VendorErrors name
(the vendor code as text, or `code.variant` where one code has two answers). A row also
lists the neutral failures (core.failures.Failure) it answers, so the whole mapping from
"what went wrong" to "what this vendor's client sees" is in one place, and a code that is
not in the table cannot be raised (VendorError checks its dialect's table).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from adapters.base import VendorError
from core.failures import Failure, failure_of


@dataclass(frozen=True)
class ErrorEntry:
    code: int | str  # on the wire
    status: int  # HTTP status
    message: str  # on the wire, in the vendor's default language
    failures: tuple[Failure, ...] = ()  # the neutral failures answered with this row
    key: str = ""  # what the dialect's VendorError names it by; "" is str(code)
    message_en: str = ""  # the English message, where the vendor answers in two languages

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", str(self.code))


class ErrorTable(Mapping[str, ErrorEntry]):
    """Key -> ErrorEntry, and Failure -> the entry answering it; `fallback` answers the rest
    (an exception that stands for no failure is a bug, and gets the vendor's internal error)."""

    def __init__(self, entries: Iterable[ErrorEntry], fallback: str):
        self._entries: dict[str, ErrorEntry] = {}
        self._by_failure: dict[Failure, ErrorEntry] = {}
        for entry in entries:
            if entry.key in self._entries:
                raise ValueError(f"error table: {entry.key!r} twice")
            self._entries[entry.key] = entry
            for failure in entry.failures:
                if failure in self._by_failure:
                    raise ValueError(f"error table: {failure} answered by {self._by_failure[failure].key!r} and {entry.key!r}")
                self._by_failure[failure] = entry
        self.fallback = self._entries[fallback]

    def __getitem__(self, key: str) -> ErrorEntry:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def unanswered(self) -> list[Failure]:
        """The failures no row answers (they would get the fallback): none, in every dialect."""
        return [failure for failure in Failure if failure not in self._by_failure]

    def for_failure(self, failure: Failure) -> ErrorEntry:
        return self._by_failure.get(failure, self.fallback)

    def for_exception(self, exc: BaseException) -> ErrorEntry:
        """The row answering `exc`: a VendorError's own, a neutral failure's, else the fallback."""
        if isinstance(exc, VendorError):
            return self._entries.get(exc.code, self.fallback)
        failure = failure_of(exc)
        return self.fallback if failure is None else self.for_failure(failure)

    def code_for(self, exc: BaseException) -> int | str:
        """The code on the wire for `exc`: what metrics and access logs label the answer with."""
        return self.for_exception(exc).code
