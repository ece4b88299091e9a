"""gateway.log: level, JSON or text lines, optional size-based rotation (config.yaml)."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime

from .settings import GeneralSettings, LitellmSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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


class _QuietAccess(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name != "proxy.access"


def configure_logging(general: GeneralSettings, litellm: LitellmSettings, *, log_file: str | None = None) -> None:
    """Replace the root handlers. `log_file` overrides general.log_file."""
    level = "DEBUG" if litellm.set_verbose else general.log_level.upper()
    formatter: logging.Formatter = JsonFormatter() if general.json_logs else logging.Formatter(TEXT_FORMAT)
    console = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [console]
    path = log_file if log_file is not None else general.log_file
    if path:
        # The file gets every request; the console keeps start-up, warnings and errors, so a
        # busy gateway does not format each request line twice.
        console.addFilter(_QuietAccess())
        if general.log_max_bytes > 0:
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    path, maxBytes=general.log_max_bytes, backupCount=general.log_backup_count
                )
            )
        else:
            # WatchedFileHandler reopens the file after logrotate moves it (the guide's recipe).
            handlers.append(logging.handlers.WatchedFileHandler(path))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's own access log would duplicate our per-request line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
