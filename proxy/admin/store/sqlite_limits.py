"""The RateCounter (store/base.py) the workers of one `serve --workers N` share: rpm, tpm and
parallel-request counts in one small SQLite file in the supervisor's private run directory
(`limits.db`, made by the supervisor, removed at exit). A single process keeps the in-memory
counter (memory_limits.py); this one admits the same way, counted across the workers.

Each admission with a limit is one short write transaction (BEGIN IMMEDIATE: SQLite's write
lock serialises the workers; ~30 µs) on this worker's "limits-db" thread: sum the subject's
requests / tokens of the window and its parallel slots, refuse or record, for every subject at
once. Releases and token counts are queued on the event loop and applied in the next
transaction (in order, off the request path). Requests and tokens are counted per whole
second (at most 61 rows per subject). The file is scratch: WAL, synchronous=OFF. Why SQLite
rather than shared memory: transactions give all-or-none across subjects, and a process that
dies mid-transaction loses its locks with it, for 30 µs — shared memory would need a lock
and an allocator of our own.

How strict (docs/operations.md "Several gateway processes on one machine"):
- rpm_limit and max_parallel_requests hold exactly across workers: no request is admitted
  past a limit, whichever worker takes it. A request counts against rpm for 60 to 61 s (whole
  seconds), a slot is freed a moment after its request ends (the release is queued): both
  can only refuse a little early, never admit past the limit.
- tpm_limit counts tokens when a request ends (as a single process does, and LiteLLM):
  requests admitted while the minute's tokens are under the limit may together go past it
  by what they use, plus what ended in the last moment on another worker.
- A worker that dies holding slots: the supervisor releases them when it reaps the worker;
  its requests stay counted in rpm for the rest of their minute.
- When the file cannot be written (a lock held past BUSY_MS, a full disk): ERROR in
  gateway.log, and for RETRY_AFTER seconds each worker counts alone, in memory (up to N times
  the limits), then the file is tried again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..records import Ref
from .memory_limits import WINDOW, MemoryRateCounter, _refuse

log = logging.getLogger("proxy.keys")
T = TypeVar("T")

BUSY_MS = 1000
#: Seconds each worker counts alone after the shared file failed, before trying it again.
RETRY_AFTER = 5.0
ERROR_EVERY = 30.0
#: Queued releases and token counts kept while the file fails (past it, token counts go).
MAX_PENDING = 100_000

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF", f"PRAGMA busy_timeout={BUSY_MS}")
# Scratch state of one run (the supervisor makes a new file each start): no migrations.
# Requests and tokens are counted per whole second: at most 61 rows per subject in the window.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS requests (ref TEXT NOT NULL, second INTEGER NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (ref, second)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS tokens (ref TEXT NOT NULL, second INTEGER NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (ref, second)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS in_flight (ref TEXT NOT NULL, owner INTEGER NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (ref, owner)) WITHOUT ROWID",
)
COUNT_REQUESTS_SQL = "SELECT coalesce(sum(n), 0), min(second) FROM requests WHERE ref = :ref AND second > :horizon"
ADD_REQUEST_SQL = """
INSERT INTO requests (ref, second, n) VALUES (:ref, :second, 1)
ON CONFLICT (ref, second) DO UPDATE SET n = n + 1
"""
SUM_TOKENS_SQL = "SELECT coalesce(sum(n), 0) FROM tokens WHERE ref = :ref AND second > :horizon"
TOKEN_ROWS_SQL = "SELECT second, n FROM tokens WHERE ref = :ref AND second > :horizon ORDER BY second"
ADD_TOKENS_SQL = """
INSERT INTO tokens (ref, second, n) VALUES (:ref, :second, :n)
ON CONFLICT (ref, second) DO UPDATE SET n = n + excluded.n
"""
IN_FLIGHT_SQL = "SELECT coalesce(sum(n), 0) FROM in_flight WHERE ref = :ref"
ENTER_SQL = """
INSERT INTO in_flight (ref, owner, n) VALUES (:ref, :owner, 1)
ON CONFLICT (ref, owner) DO UPDATE SET n = n + 1
"""
LEAVE_SQL = "UPDATE in_flight SET n = n - 1 WHERE ref = :ref AND owner = :owner"
CLEAR_SQL = "DELETE FROM in_flight WHERE ref = :ref AND owner = :owner AND n <= 0"
FORGET_SQL = (
    "DELETE FROM requests WHERE ref = :ref",
    "DELETE FROM tokens WHERE ref = :ref",
    "DELETE FROM in_flight WHERE ref = :ref",
)
PRUNE_SQL = ("DELETE FROM requests WHERE second <= :horizon", "DELETE FROM tokens WHERE second <= :horizon")
USAGE_SQL = (
    "SELECT ref, sum(n) FROM requests WHERE second > :horizon GROUP BY ref",
    "SELECT ref, sum(n) FROM tokens WHERE second > :horizon GROUP BY ref",
)
#: /metrics reads every subject's use of the minute at most this often (seconds).
USAGE_TTL = 0.5
OWNER_SLOTS_SQL = "SELECT coalesce(sum(n), 0) FROM in_flight WHERE owner = :owner"
RELEASE_OWNER_SQL = "DELETE FROM in_flight WHERE owner = :owner"


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def create_limits_db(path: str | Path) -> None:
    """The supervisor makes the file before any worker opens it."""
    conn = connect(path)
    try:
        for statement in SCHEMA:
            conn.execute(statement)
    finally:
        conn.close()


def release_owner(path: str | Path, owner: int) -> int:
    """The supervisor, for a worker that died: drop its parallel slots; returns how many."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        held = conn.execute(OWNER_SLOTS_SQL, {"owner": owner}).fetchone()[0]
        conn.execute(RELEASE_OWNER_SQL, {"owner": owner})
        conn.execute("COMMIT")
        return int(held)
    finally:
        conn.close()


def _key(ref: Ref) -> str:
    return f"{ref.kind}:{ref.ident}"


def _second(now: float) -> int:
    return int(now)


def _horizon(now: float) -> int:
    """Seconds at or before this one are out of the window: a request counts 60 to 61 s."""
    return _second(now) - int(WINDOW)


def _token_wait(rows: list[tuple[int, int]], total: int, limit: int, now: float) -> float:
    """Seconds until enough of the minute's tokens age out to drop below `limit`."""
    for second, tokens in rows:
        total -= tokens
        if total < limit:
            return second + 1 + WINDOW - now
    return WINDOW


class SqliteRateCounter:
    def __init__(self, path: str | Path, *, owner: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.owner = os.getpid() if owner is None else owner
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # the limits-db thread's
        self._held: dict[Ref, int] = {}  # parallel slots this process holds in the file
        self._pending: deque[tuple[Any, ...]] = deque()  # releases, tokens, forgets to apply
        self._drain_queued = False
        self._last_prune = 0.0
        # While the file fails: each worker alone (what a single process does).
        self._fallback = MemoryRateCounter(clock)
        self._local: dict[Ref, int] = {}  # slots taken from the fallback
        self._down_until = 0.0
        self._last_error = -ERROR_EVERY
        self._reader: sqlite3.Connection | None = None  # the event loop's, for usage()
        self._usage: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._usage_at: float | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="limits-db")
        try:
            await self._run(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _connect(self) -> None:
        self._conn = connect(self.path)
        for statement in SCHEMA:  # normally there already (the supervisor made the file)
            self._conn.execute(statement)

    async def flush(self) -> None:
        """Apply what is queued (releases, tokens) now."""
        if self._executor is not None:
            await self._run(self._drain)

    async def close(self) -> None:
        """Apply what is queued (this worker's releases), then close."""
        if self._executor is None:
            return
        await self.flush()
        if self._conn is not None:
            await self._run(self._conn.close)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None, "open() has not run"
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    # -- RateCounter ----------------------------------------------------------------------
    async def acquire(self, subjects: Sequence[Any]) -> None:
        now = self._clock()
        if now >= self._down_until and self._executor is not None:
            try:
                refusal = await self._run(self._acquire, list(subjects), now)
            except sqlite3.Error as exc:
                self._degrade(exc, now)
            else:
                if refusal is not None:
                    _refuse(*refusal)
                for s in subjects:
                    if s.max_parallel_requests is not None:
                        self._held[s.ref] = self._held.get(s.ref, 0) + 1
                return
        await self._fallback.acquire(subjects)
        for s in subjects:
            self._local[s.ref] = self._local.get(s.ref, 0) + 1

    def release(self, refs: Sequence[Ref]) -> None:
        for ref in refs:
            if self._local.get(ref):
                self._local[ref] -= 1
                self._fallback.release([ref])
                continue
            held = self._held.get(ref, 0)
            if held:
                self._held[ref] = held - 1
                self._pending.append(("leave", _key(ref)))
        self._schedule_drain()

    def add_tokens(self, subjects: Sequence[Any], tokens: int) -> None:
        if tokens <= 0:
            return
        now = self._clock()
        self._fallback.add_tokens(subjects, tokens)
        for s in subjects:
            if s.tpm_limit is not None:
                self._pending.append(("tokens", _key(s.ref), now, tokens))
        self._schedule_drain()

    def usage(self, ref: Ref) -> tuple[int, int]:
        """(requests, tokens) every worker counted against `ref` in the last minute, for
        /metrics. Read from the file at most every USAGE_TTL seconds, two queries for all
        subjects, on the event loop: a WAL reader never waits for the writers."""
        now = self._clock()
        if self._usage_at is None or now - self._usage_at >= USAGE_TTL:
            self._usage_at = now
            try:
                if self._reader is None:
                    self._reader = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
                    self._reader.execute("PRAGMA busy_timeout=50")
                params = {"horizon": _horizon(now)}
                requests, tokens = (dict(self._reader.execute(sql, params).fetchall()) for sql in USAGE_SQL)
                self._usage = (requests, tokens)
            except sqlite3.Error as exc:
                log.debug("rate limits: could not read the shared counters for /metrics: %s", exc)
        key = _key(ref)
        return self._usage[0].get(key, 0), self._usage[1].get(key, 0)

    def in_flight(self, ref: Ref) -> int:
        """This worker's requests in flight for `ref` (the file holds every worker's)."""
        return self._held.get(ref, 0) + self._local.get(ref, 0)

    def forget(self, ref: Ref) -> None:
        self._held.pop(ref, None)
        self._local.pop(ref, None)
        self._fallback.forget(ref)
        self._pending.append(("forget", _key(ref)))
        self._schedule_drain()

    # -- on the limits-db thread ------------------------------------------------------------
    def _acquire(self, subjects: list[Any], now: float) -> tuple[Any, str, float] | None:
        conn = self._conn
        assert conn is not None
        ops = self._take_pending()
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._apply(conn, ops, now)
            refusal = self._check(conn, subjects, now)
            if refusal is None:
                for s in subjects:
                    params = {"ref": _key(s.ref), "second": _second(now), "owner": self.owner}
                    if s.rpm_limit is not None:
                        conn.execute(ADD_REQUEST_SQL, params)
                    if s.max_parallel_requests is not None:
                        conn.execute(ENTER_SQL, params)
            conn.execute("COMMIT")  # a refusal keeps the expiry and the queued releases
            return refusal
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._requeue(ops)
            raise

    def _check(self, conn: sqlite3.Connection, subjects: list[Any], now: float) -> tuple[Any, str, float] | None:
        horizon = _horizon(now)
        for s in subjects:
            params = {"ref": _key(s.ref), "horizon": horizon}
            if s.rpm_limit is not None:
                count, first = conn.execute(COUNT_REQUESTS_SQL, params).fetchone()
                if count >= s.rpm_limit:
                    wait = first + 1 + WINDOW - now if first is not None else WINDOW
                    return s, f"rpm_limit of {s.rpm_limit} requests per minute", wait
            if s.tpm_limit is not None:
                total = conn.execute(SUM_TOKENS_SQL, params).fetchone()[0]
                if total >= s.tpm_limit:
                    rows = conn.execute(TOKEN_ROWS_SQL, params).fetchall()
                    return s, f"tpm_limit of {s.tpm_limit} tokens per minute", _token_wait(rows, total, s.tpm_limit, now)
            if s.max_parallel_requests is not None:
                running = conn.execute(IN_FLIGHT_SQL, params).fetchone()[0]
                if running >= s.max_parallel_requests:
                    return s, f"max_parallel_requests of {s.max_parallel_requests}", 1.0
        return None

    def _drain(self) -> None:
        self._drain_queued = False  # before taking: what is queued after this runs next time
        if not self._pending or self._conn is None:
            return
        conn = self._conn
        ops = self._take_pending()
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._apply(conn, ops, self._clock())
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._requeue(ops)
            self._degrade(exc, self._clock())

    def _apply(self, conn: sqlite3.Connection, ops: list[tuple[Any, ...]], now: float) -> None:
        for op in ops:
            if op[0] == "leave":
                params = {"ref": op[1], "owner": self.owner}
                conn.execute(LEAVE_SQL, params)
                conn.execute(CLEAR_SQL, params)
            elif op[0] == "tokens":
                conn.execute(ADD_TOKENS_SQL, {"ref": op[1], "second": _second(op[2]), "n": op[3]})
            else:
                for sql in FORGET_SQL:
                    conn.execute(sql, {"ref": op[1]})
        if now - self._last_prune >= WINDOW:  # subjects no longer asked for
            self._last_prune = now
            for sql in PRUNE_SQL:
                conn.execute(sql, {"horizon": _horizon(now)})

    def _take_pending(self) -> list[tuple[Any, ...]]:
        ops = []
        while self._pending:
            ops.append(self._pending.popleft())
        return ops

    def _requeue(self, ops: list[tuple[Any, ...]]) -> None:
        self._pending.extendleft(reversed(ops))
        while len(self._pending) > MAX_PENDING:
            self._pending.pop()

    # -- on the event loop ------------------------------------------------------------------
    def _schedule_drain(self) -> None:
        if self._drain_queued or not self._pending or self._executor is None:
            return
        self._drain_queued = True
        asyncio.get_running_loop().run_in_executor(self._executor, self._drain)

    def _degrade(self, exc: Exception, now: float) -> None:
        self._down_until = now + RETRY_AFTER
        if now - self._last_error >= ERROR_EVERY:
            self._last_error = now
            log.error("rate limits: the workers' shared counters (%s) failed: %s; each worker "
                      "counts alone for %gs, then tries again", self.path, exc, RETRY_AFTER)
