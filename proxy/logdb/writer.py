"""The one thread that writes the request log.

The event loop only ever calls `submit()`, a lock-free `SimpleQueue.put`; the thread drains the
queue in batches and commits each batch in one transaction. A slow disk, a long checkpoint or
a reader holding a lock therefore delays rows, never responses.

No row is dropped (docs/operations.md, "When the request log cannot be written"):
- a row SQLite refuses (after `storable()` repaired what it could) is set aside alone: the
  rest of its batch is written, the row goes to the refused file beside the spill file;
- while the database refuses writes (locked, disk full, read-only, …) rows are held and
  retried; past `spill_after` seconds, past `max_backlog` rows, or at shutdown they are
  appended to the spill file (fsynced), and replayed — each exactly once, by request_id — as
  soon as the database takes writes again, also by the next process after a restart;
- if even the spill file cannot be written, rows stay in memory and an ERROR says so.
`status()` is the one view of all this (/health, /metrics, tests).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .record import RequestRecord, row_dict
from .spill import SpillFile, append_synced, default_spill_path, encode, entry, refused_path
from .store import LogStore

log = logging.getLogger("proxy.logdb")

_STOP = object()
_WAKE = object()
_RECORD_FIELDS = frozenset(f.name for f in fields(RequestRecord))
#: Seconds between repeated warnings of one ongoing fault.
_REPEAT_WARNING = 30.0


@dataclass(frozen=True, slots=True)
class WriterStatus:
    """The request log's state, as /health and /metrics report it."""

    degraded: bool  # rows are spilled, held past spill_after, or queued past max_backlog
    reason: str | None  # why, in a sentence; None when not degraded
    backlog: int  # rows in memory, neither committed nor spilled yet
    spilled_pending: int  # rows in the spill file waiting to be replayed
    rows_written: int  # committed, live rows and replayed ones
    rows_spilled: int
    rows_replayed: int  # committed from the spill file (duplicates skipped are not counted)
    rows_refused: int  # refused by SQLite, kept in the refused file
    rows_lost: int  # could not be committed nor spilled at exit (logged at ERROR)
    spill_path: str


class LogWriter:
    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 500,
        max_latency: float = 0.05,
        spill_path: str | Path | None = None,
        spill_after: float = 5.0,
        max_backlog: int = 10_000,
        retry_interval: float = 0.5,
        pragmas: tuple[str, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        # How long the thread waits to grow a batch once it holds one row: bounds the delay
        # before a row is visible to readers (and what a SIGKILL can lose) while still
        # amortising commits under load.
        self.max_latency = max_latency
        self.spill_after = spill_after
        self.max_backlog = max_backlog
        self.retry_interval = retry_interval
        self.store = LogStore(self.path, pragmas)  # pragmas: e.g. a page cap, in tests
        self.spill = SpillFile(spill_path or default_spill_path(self.path))
        self.refused_path = refused_path(self.spill.base)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0
        # Owned by the writer thread; read (racily, harmlessly) by status().
        self._held: list[tuple[Any, ...]] = []  # value tuples (RequestRecord.as_values)
        self._refused: list[dict[str, Any]] = []  # refused entries not yet in the refused file
        self._refused_live = 0  # of which came from the queue (not from a replay)
        self._fault: str | None = None
        self._fault_since: float | None = None
        self._last_attempt = 0.0
        self._spill_error: str | None = None
        self._urgent = False
        self._warned: dict[str, float] = {}
        self._written = self._spilled = self._replayed = self._refused_count = self._lost = 0

    # -- called from the event loop -------------------------------------------------------
    def submit(self, record: RequestRecord) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(record)

    def status(self) -> WriterStatus:
        reasons = []
        fault, since = self._fault, self._fault_since
        if fault and since is not None and time.monotonic() - since >= self.spill_after:
            reasons.append(f"the request log database refuses writes ({fault})")
        if self._spill_error:
            reasons.append(f"the spill file cannot be written ({self._spill_error})")
        if self.spill.pending:
            reasons.append(f"{self.spill.pending} rows in the spill file await replay")
        if self._pending >= self.max_backlog:
            reasons.append(f"{self._pending} rows queued, past the bound of {self.max_backlog}")
        return WriterStatus(
            degraded=bool(reasons),
            reason="; ".join(reasons) or None,
            backlog=self._pending,
            spilled_pending=self.spill.pending,
            rows_written=self._written,
            rows_spilled=self._spilled,
            rows_replayed=self._replayed,
            rows_refused=self._refused_count,
            rows_lost=self._lost,
            spill_path=str(self.spill.path or self.spill.base),
        )

    @property
    def rows_written(self) -> int:
        return self._written

    @property
    def rows_failed(self) -> int:
        """Rows neither committed nor spilled (only ever at exit, logged at ERROR)."""
        return self._lost

    @property
    def backlog(self) -> int:
        return self._pending

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        # Open (and migrate) on the caller's thread so a bad path fails start-up loudly.
        self.store.open()
        try:
            found = self.spill.recover()
        except OSError as exc:
            log.error("request log: cannot read the spill file %s: %s", self.spill.base, exc)
            found = 0
        if found:
            log.warning("request log: %d rows spilled earlier in %s will be replayed", found, self.spill.path)
        self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Commit or spill everything submitted so far, then stop the thread."""
        if self._thread is None:
            return True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("request log: the writer did not finish within %gs; %d rows not saved",
                      timeout, self._pending)
            return False
        self._thread = None
        return True

    def flush(self, timeout: float) -> bool:
        """Commit what is queued, spilling at once (not after spill_after) what the database
        refuses: shutdown calls this as soon as no request can add a row."""
        self._urgent = True
        self._queue.put(_WAKE)
        try:
            return self.wait_idle(timeout)
        finally:
            self._urgent = False

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every submitted row is committed, spilled or refused (tests, shutdown,
        the demo)."""
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
    def _run(self) -> None:
        try:
            while True:
                stopping = self._collect()
                try:
                    self._step(final=stopping)
                except Exception:  # a bug here must not end the thread and strand every row
                    log.exception("request log: writer error; retrying")
                    time.sleep(self.retry_interval)
                if stopping:
                    break
        finally:
            self.store.close()
            self.spill.close()

    def _collect(self) -> bool:
        """Move queued rows into `_held`; True once stop() was called."""
        if self._held or self._refused or self.spill.pending:
            replaying = self.spill.pending and self._fault is None and not self._held
            timeout: float | None = 0 if replaying else self.retry_interval
        else:
            timeout = None
        try:
            items = [self._queue.get(timeout=timeout) if timeout != 0 else self._queue.get_nowait()]
        except queue.Empty:
            return False
        # Under a fault everything queued is taken (to be spilled); otherwise one batch.
        limit = self.batch_size if self._fault is None else max(self.batch_size, self.max_backlog)
        stopping = self._drain(items, limit)
        if not stopping and self._fault is None and len(items) < self.batch_size:
            # Let the batch grow by sleeping, not by a blocking get() per row: a thread
            # woken for every row takes the GIL from the event loop once per request.
            time.sleep(self.max_latency)
            stopping = self._drain(items, limit)
        for item in items:
            if item is _STOP:
                stopping = True
            elif isinstance(item, RequestRecord):
                try:
                    self._held.append(item.as_values())
                except Exception as exc:  # storable() covers values; this covers the rest
                    self._refuse({"request_id": getattr(item, "request_id", None), "repr": repr(item)},
                                 exc, live=True)
        return stopping

    def _drain(self, items: list[object], limit: int) -> bool:
        """Move queued items into `items`, up to `limit`, without waiting; True on stop."""
        while len(items) < limit:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            items.append(item)
            if item is _STOP:
                return True
        return False

    def _step(self, *, final: bool) -> None:
        now = time.monotonic()
        due = self._fault is None or final or now - self._last_attempt >= self.retry_interval
        if self._held:
            if due and self._commit_held():
                due = True  # the database just took a batch: go on with the replay
            else:
                due = False
                if final or self._urgent or self._over_bound() or (
                    self._fault_since is not None and now - self._fault_since >= self.spill_after
                ):
                    self._spill_held()
        # Replay a chunk per step, between live batches, so neither starves the other.
        if self.spill.pending and due and not final and not self._held:
            self._replay_chunk()
        if self._refused:
            self._save_refused()
        if final:
            self._give_up()

    def _over_bound(self) -> bool:
        return len(self._held) >= self.max_backlog

    # -- committing -----------------------------------------------------------------------
    def _commit_held(self) -> bool:
        rows = self._held
        self._last_attempt = time.monotonic()
        try:
            inserted, refused = self.store.insert(rows)
        except sqlite3.OperationalError as exc:
            self._failed(exc, len(rows))
            return False
        for row, exc in refused:
            self._refuse(row, exc, live=True)
        self._held = []
        self._written += inserted
        self._done(inserted)
        self._spill_error = None  # nothing waits for the spill file any more
        self._recovered()
        return True

    def _failed(self, exc: sqlite3.Error, rows: int) -> None:
        if self._fault is None:
            self._fault_since = time.monotonic()
            log.warning("request log: the database refuses writes (%s); holding %d rows, "
                        "spilling after %gs", exc, rows, self.spill_after)
        self._fault = str(exc)
        self.store.faulted(exc)

    def _recovered(self) -> None:
        if self._fault is None:
            return
        assert self._fault_since is not None
        log.warning("request log: the database accepts writes again after %.1fs (%s)",
                    time.monotonic() - self._fault_since, self._fault)
        self._fault = self._fault_since = None
        self._warned.pop("spill", None)
        self.store.recovered()

    # -- spilling -------------------------------------------------------------------------
    def _spill_held(self) -> None:
        rows = self._held
        reason = self._fault or "shutdown"
        try:
            self.spill.append([entry(row_dict(row), reason) for row in rows])
        except OSError as exc:
            self._spill_error = str(exc)
            if self._warn_due("spill-error"):
                log.error("request log: cannot write the spill file %s (%s): %d rows held in memory",
                          self.spill.path or self.spill.base, exc, len(rows))
            return
        if self._spill_error:
            log.warning("request log: the spill file is writable again (%s)", self.spill.path)
        self._spill_error = None
        self._held = []
        self._spilled += len(rows)
        self._done(len(rows))
        if self._warn_due("spill"):
            log.warning("request log: spilled %d rows to %s (%s); %d await replay",
                        len(rows), self.spill.path, reason, self.spill.pending)

    def _replay_chunk(self) -> None:
        items, end, lines = self.spill.read(self.batch_size)
        rows = []
        for item in items:
            row = _replayable(item)
            if row is None:
                self._refuse(item or {}, ValueError("unreadable spill line"), live=False)
            else:
                rows.append(row)
        self._last_attempt = time.monotonic()
        try:
            inserted, refused = self.store.insert(rows, replay=True)
        except sqlite3.OperationalError as exc:
            self._failed(exc, 0)
            return
        for row, exc in refused:
            self._refuse(row, exc, live=False)
        if self._refused:
            self._save_refused()  # if it cannot, they stay in memory (ERROR), like live rows
        self.spill.consumed(end, lines)
        self._written += inserted
        self._replayed += inserted
        self._recovered()
        if not self.spill.pending:
            try:
                self.spill.truncate_if_done()
            except OSError as exc:  # harmless: a replay skips rows already logged
                log.warning("request log: could not empty the spill file %s: %s", self.spill.path, exc)
            log.info("request log: every spilled row is replayed (%d this run)", self._replayed)

    # -- refused rows and the end ---------------------------------------------------------
    def _refuse(self, row: dict[str, Any] | tuple[Any, ...], exc: BaseException, *, live: bool) -> None:
        row = row_dict(row)
        reason = f"{type(exc).__name__}: {exc}"
        self._refused.append(entry(row, reason, refused=True))
        self._refused_count += 1
        self._refused_live += live
        log.warning("request log: SQLite refused row request_id=%s (%s); kept in %s",
                    row.get("request_id"), reason, self.refused_path)

    def _save_refused(self) -> None:
        try:
            append_synced(self.refused_path, encode(self._refused))
        except OSError as exc:
            if self._warn_due("refused-error"):
                log.error("request log: cannot write %s (%s): %d refused rows held in memory",
                          self.refused_path, exc, len(self._refused))
            return
        # Rows refused on the live path leave the backlog here; replayed ones never were in it.
        self._refused = []
        self._done(self._refused_live)
        self._refused_live = 0

    def _give_up(self) -> None:
        lost = len(self._held) + len(self._refused)
        if not lost:
            return
        ids = [row_dict(r).get("request_id") for r in self._held[:3]]
        log.error("request log: %d rows could be neither written nor spilled and are lost "
                  "(first request_ids: %s)", lost, ", ".join(map(str, ids)) or "-")
        self._lost += lost
        self._done(len(self._held) + self._refused_live)
        self._held, self._refused, self._refused_live = [], [], 0

    def _done(self, rows: int) -> None:
        with self._idle:
            self._pending -= rows
            self._idle.notify_all()

    def _warn_due(self, kind: str) -> bool:
        now = time.monotonic()
        if now - self._warned.get(kind, -_REPEAT_WARNING) < _REPEAT_WARNING:
            return False
        self._warned[kind] = now
        return True


def _replayable(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A spilled entry's row as a full, storable row (lines from older versions included)."""
    if item is None:
        return None
    try:
        record = RequestRecord(**{k: v for k, v in item["row"].items() if k in _RECORD_FIELDS})
        return record.as_row()
    except (TypeError, KeyError):
        return None

