"""Build progress on stderr: one line per stage, plus a redrawn bar when stderr is a terminal.

Cron and CI logs get plain lines (no control characters); a person at a terminal also sees
the bar move through the queries, which is where a big database spends its time.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self._bar_open = False

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def stage(self, message: str) -> None:
        if self.quiet:
            return
        self._close_bar()
        self.stream.write(f"sitegen: {message}\n")
        self.stream.flush()

    def step(self, done: int, total: int, label: str) -> None:
        """Advance the bar (terminals only; plain logs get the stage lines alone)."""
        if self.quiet or not self.tty or total <= 0:
            return
        width = 28
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r  [{bar}] {done}/{total} {label[:40]:<40}")
        self.stream.flush()
        self._bar_open = True

    def _close_bar(self) -> None:
        if self._bar_open:
            self.stream.write("\r" + " " * 80 + "\r")
            self._bar_open = False

    def summary(self, message: str) -> None:
        self._close_bar()
        if not self.quiet:
            self.stream.write(f"sitegen: {message}\n")
            self.stream.flush()
