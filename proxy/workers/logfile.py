"""gateway.log written by the supervisor and every worker at once.

logging's FileHandler writes through a buffered stream that reaches the file in 8 KiB pieces,
cut anywhere: with several processes appending to one file, half a line of one lands between
two lines of another. Here each process buffers whole lines and appends them with a single
`write()` on an O_APPEND descriptor (every `log_flush_seconds`, at once for warnings and
errors), so lines from different processes interleave but never break. The file is reopened
when logrotate has moved it, as WatchedFileHandler does. Size-based rotation
(`log_max_bytes`) cannot be shared — each process would rotate on its own — so the supervisor
refuses it with --workers (rotate with logrotate instead).

Every line of a worker names it (`proxy.access [worker 2]: …`, `"worker": 2` in JSON), the
supervisor's lines come from the `proxy.workers` logger.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..logsetup import TEXT_FORMAT, JsonFormatter, TextFormatter

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT


class SharedLogFile(logging.Handler):
    def __init__(self, path: str | Path, interval: float) -> None:
        super().__init__()
        self.path = Path(path)
        self.interval = interval
        self._lines: list[str] = []
        self._fd = os.open(self.path, _FLAGS, 0o644)
        self._ino = os.fstat(self._fd).st_ino
        self._closed = threading.Event()
        if interval > 0:
            threading.Thread(target=self._flush_loop, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:  # called under self.lock
        try:
            self._lines.append(self.format(record) + "\n")
            if self.interval <= 0 or record.levelno >= logging.WARNING:
                self._write()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _flush_loop(self) -> None:
        while not self._closed.wait(self.interval):
            try:
                self.flush()
            except OSError:
                pass  # disk full: the lines stay buffered (bounded below) and are tried again

    def _write(self) -> None:
        if not self._lines or self._fd < 0:
            return
        data = "".join(self._lines).encode("utf-8", "backslashreplace")
        self._reopen_if_moved()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            if len(self._lines) > 100_000:
                del self._lines[:-10_000]  # a log that cannot be written must not eat the memory
            raise
        self._lines.clear()

    def _reopen_if_moved(self) -> None:
        try:
            moved = os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            moved = True
        if moved:
            fd = os.open(self.path, _FLAGS, 0o644)
            os.close(self._fd)
            self._fd, self._ino = fd, os.fstat(fd).st_ino

    def close(self) -> None:
        self._closed.set()
        with self.lock:  # type: ignore[union-attr]
            try:
                self._write()
            except OSError:
                pass
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        super().close()


class _WorkerJson(JsonFormatter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
        fields.setdefault("worker", self.index)
        record.fields = fields
        return super().format(record)


def share_log_file(interval: float, *, worker: int | None = None) -> None:
    """After `configure_logging`: swap its file handler for a SharedLogFile (same file, level,
    filters) and, in a worker, name the worker on every line."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not getattr(handler, "_shin", False):
            continue
        formatter = handler.formatter
        if worker is not None:
            if isinstance(formatter, JsonFormatter):
                formatter = _WorkerJson(worker)
            else:
                formatter = TextFormatter(TEXT_FORMAT.replace("%(name)s:", f"%(name)s [worker {worker}]:"))
            handler.setFormatter(formatter)
        if isinstance(handler, logging.FileHandler):
            shared = SharedLogFile(handler.baseFilename, interval)
            shared.setFormatter(formatter)
            shared.setLevel(handler.level)
            for f in handler.filters:
                shared.addFilter(f)
            shared._shin = True  # type: ignore[attr-defined]
            root.removeHandler(handler)
            handler.close()
            root.addHandler(shared)
