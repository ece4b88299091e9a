"""gateway.log: level, JSON or text lines, optional size-based rotation (config.yaml)."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from .settings import GeneralSettings, LitellmSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: How gateway.log is opened: request text may hold a lone surrogate ("\ud800") that UTF-8
#: cannot encode; written as \ud800 rather than a "--- Logging error ---" and a lost line.
FILE_ENCODING = {"encoding": "utf-8", "errors": "backslashreplace"}


#: TEXT_FORMAT and its variants with a fixed text after the logger name (a worker's number).
_PLAIN = re.compile(r"%\(asctime\)s %\(levelname\)s %\(name\)s([^%]*): %\(message\)s")


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT lines that any stream can encode: a lone surrogate from a request is
    written as \\ud800 (the console's stream may be strict, e.g. under a test runner).

    A line per request goes through here: the format's fields are filled in directly rather
    than through Formatter.format's general machinery, and the date and time are formatted
    once per second (the same text as logging.Formatter.formatTime)."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)
        plain = _PLAIN.fullmatch(fmt or "") if datefmt is None else None
        self._after_name = plain.group(1) + ": " if plain else None
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None or self.converter is not time.localtime:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, time.localtime(second))
            self._second = second
        return self.default_msec_format % (self._second_text, record.msecs)

    def _plain(self, record: logging.LogRecord) -> str | None:
        after = self._after_name
        if after is None or record.exc_info or record.exc_text or record.stack_info:
            return None
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        return f"{record.asctime} {record.levelname} {record.name}{after}{record.message}"

    def format(self, record: logging.LogRecord) -> str:
        line = self._plain(record)
        if line is None:
            line = super().format(record)
        if line.isascii():
            return line
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            return line.encode("utf-8", "backslashreplace").decode("utf-8")
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _BufferedFile:
    """File handler mixin: lines go through the file's buffer and reach the disk every
    `interval` seconds from a small thread, or at once for warnings and errors — like nginx's
    `access_log … flush=`. One write() per request line was a tenth of the gateway's CPU."""

    interval = 0.5

    def _start_flushing(self, interval: float) -> None:
        self.interval = interval
        self._closed = threading.Event()
        threading.Thread(target=self._flush_loop, name="log-flush", daemon=True).start()

    def _flush_loop(self) -> None:
        while not self._closed.wait(self.interval):
            self.flush_now()

    def flush(self) -> None:
        """Called by emit() after every line: left to the flush thread."""

    def flush_now(self) -> None:
        logging.StreamHandler.flush(self)  # type: ignore[arg-type]

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)  # type: ignore[misc]
        if record.levelno >= logging.WARNING:
            self.flush_now()

    def close(self) -> None:
        self._closed.set()
        self.flush_now()
        super().close()  # type: ignore[misc]


class BufferedWatchedFileHandler(_BufferedFile, logging.handlers.WatchedFileHandler):
    def __init__(self, filename: str, interval: float) -> None:
        super().__init__(filename, **FILE_ENCODING)
        self._start_flushing(interval)


class BufferedRotatingFileHandler(_BufferedFile, logging.handlers.RotatingFileHandler):
    def __init__(self, filename: str, interval: float, *, max_bytes: int, backup_count: int) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count, **FILE_ENCODING)
        self._start_flushing(interval)


class _QuietAccess(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name != "proxy.access"


def configure_logging(general: GeneralSettings, litellm: LitellmSettings, *, log_file: str | None = None) -> None:
    """Replace the root handlers. `log_file` overrides general.log_file."""
    level = "DEBUG" if litellm.set_verbose else general.log_level.upper()
    json_logs = general.json_logs or litellm.json_logs  # LiteLLM keeps it in litellm_settings
    formatter: logging.Formatter = JsonFormatter() if json_logs else TextFormatter(TEXT_FORMAT)
    console = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [console]
    path = log_file if log_file is not None else general.log_file
    if path:
        # The file gets every request; the console keeps start-up, warnings and errors, so a
        # busy gateway does not format each request line twice.
        console.addFilter(_QuietAccess())
        handlers.append(_file_handler(path, general))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if getattr(handler, "_shin", False):
            handler.close()  # ours: flush what is buffered, stop its flush thread
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._shin = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # Fields no format of ours shows, which logging would otherwise find for every line (the
    # caller's file and line: a walk up the stack; thread and process): the logging HOWTO's
    # "Optimization" settings.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # aiohttp's own access log would duplicate our per-request line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _file_handler(path: str, general: GeneralSettings) -> logging.Handler:
    interval = general.log_flush_seconds
    if general.log_max_bytes > 0:
        if interval > 0:
            return BufferedRotatingFileHandler(
                path, interval, max_bytes=general.log_max_bytes, backup_count=general.log_backup_count
            )
        return logging.handlers.RotatingFileHandler(
            path, maxBytes=general.log_max_bytes, backupCount=general.log_backup_count, **FILE_ENCODING
        )
    # A watched file is reopened after logrotate moves it (the guide's recipe needs no signal).
    if interval > 0:
        return BufferedWatchedFileHandler(path, interval)
    return logging.handlers.WatchedFileHandler(path, **FILE_ENCODING)


class _Held(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def held_logs(name: str) -> Iterator[None]:
    """Hold what logger `name` says inside the block and replay it at the end, through the
    handlers configured by then: config.yaml is read (and warned about) before its own
    logging settings can be applied, yet its warnings belong in gateway.log too."""
    logger = logging.getLogger(name)
    held, propagate = _Held(), logger.propagate
    logger.addHandler(held)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(held)
        logger.propagate = propagate
        for record in held.records:
            logger.handle(record)
