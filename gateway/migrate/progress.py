"""A one-line progress bar on stderr (a plain line every 10% when stderr is not a terminal)."""
from __future__ import annotations

import sys


class Progress:
    def __init__(self, total: int, label: str = "", stream=None, width: int = 30):
        self.total = max(0, total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_tenth = -1

    def advance(self, note: str = "") -> None:
        self.done += 1
        if self._tty:
            filled = int(self.width * self.done / self.total) if self.total else self.width
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} {note[:40]:40s}")
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            tenth = int(10 * self.done / self.total) if self.total else 10
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                self.stream.write(f"{self.label} {self.done}/{self.total}\n")
        self.stream.flush()
