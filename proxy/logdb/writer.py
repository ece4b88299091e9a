"""The one thread that writes the request log.

The event loop only ever calls `submit()`, a lock-free `SimpleQueue.put`; the thread drains the
queue in batches and commits each batch in one transaction. A slow disk, a long checkpoint or
a reader holding a lock therefore delays rows, never responses.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from .record import RequestRecord
from .schema import INSERT_REQUEST_SQL, connect_writer

log = logging.getLogger("proxy.logdb")

_STOP = object()


class LogWriter:
    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 500,
        max_latency: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        # How long the thread waits to grow a batch once it holds one row: bounds the delay
        # before a row is visible to readers while still amortising commits under load.
        self.max_latency = max_latency
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._written = 0
        self._failed = 0
        self._idle = threading.Condition()
        self._pending = 0

    # -- called from the event loop -------------------------------------------------------
    def submit(self, record: RequestRecord) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(record)

    @property
    def rows_written(self) -> int:
        return self._written

    @property
    def rows_failed(self) -> int:
        return self._failed

    @property
    def backlog(self) -> int:
        return self._pending

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        # Open (and migrate) on the caller's thread so a bad path fails start-up loudly.
        conn = connect_writer(self.path)
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="request-log-writer", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Flush everything submitted so far, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every submitted row is committed (tests, shutdown, the demo)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def submit_many(self, records: Iterable[RequestRecord]) -> None:
        """Queue many records (e.g. generated history) through the same path as live rows."""
        for record in records:
            self.submit(record)

    # -- the thread -----------------------------------------------------------------------
    def _run(self, conn: sqlite3.Connection) -> None:
        stopping = False
        try:
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch = [first]
                stopping = self._drain(batch)
                if not stopping and len(batch) < self.batch_size:
                    # Let the batch grow by sleeping, not by a blocking get() per row: a thread
                    # woken for every row takes the GIL from the event loop once per request.
                    time.sleep(self.max_latency)
                    stopping = self._drain(batch)
                self._commit(conn, batch)  # type: ignore[arg-type]
        finally:
            conn.close()

    def _drain(self, batch: list[object]) -> bool:
        """Move queued rows into `batch`, up to batch_size, without waiting; True on stop."""
        while len(batch) < self.batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            batch.append(item)
        return False

    def _commit(self, conn: sqlite3.Connection, batch: list[RequestRecord]) -> None:
        rows = [record.as_row() for record in batch]
        attempt = 0
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(INSERT_REQUEST_SQL, rows)
                conn.execute("COMMIT")
                self._written += len(rows)
                break
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                # A backup or a stray writer holding the lock past busy_timeout: keep the rows
                # in memory and retry rather than lose them.
                attempt += 1
                log.warning("request log busy (%s); retry %d for %d rows", exc, attempt, len(rows))
                time.sleep(min(1.0, 0.1 * attempt))
            except Exception:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                log.exception("could not write %d request-log rows", len(rows))
                self._failed += len(rows)
                break
        with self._idle:
            self._pending -= len(batch)
            self._idle.notify_all()
