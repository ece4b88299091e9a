"""gateway.log written by the supervisor and every worker at once.

The file handlers of logsetup.py open the file in append mode (O_APPEND) and reach it through
Python's buffered text stream, which only ever hands whole earlier writes — whole lines — to
the kernel, one write() each: lines of several processes interleave but never break
(tests/test_workers_parts.py checks it with four processes). Logrotate's move-and-create
works as for one process (WatchedFileHandler reopens). Size-based rotation (`log_max_bytes`)
cannot be shared — each process would rotate on its own — so the supervisor refuses it with
--workers.

Every line of a worker names it (`proxy.access [worker 2]: …`, `"worker": 2` in JSON); the
supervisor's own lines come from the `proxy.workers` logger.
"""

from __future__ import annotations

import logging
from typing import Any

from ..logsetup import TEXT_FORMAT, JsonFormatter, TextFormatter


class _WorkerJson(JsonFormatter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
        fields.setdefault("worker", self.index)
        record.fields = fields
        return super().format(record)


def name_worker_lines(worker: int) -> None:
    """After `configure_logging`, in worker `worker`: every line says which worker wrote it."""
    text = TextFormatter(TEXT_FORMAT.replace("%(name)s:", f"%(name)s [worker {worker}]:"))
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_shin", False):
            handler.setFormatter(_WorkerJson(worker) if isinstance(handler.formatter, JsonFormatter) else text)
