"""The writer thread's SQLite side: one connection, batches in one transaction each.

A batch SQLite will not take because of one row (a constraint, a value it cannot bind) is
written again row by row, so only that row is set aside. `sqlite3.OperationalError` is the
database itself refusing (locked, disk full, read-only, cannot open): it rises to the writer,
which holds, retries and spills.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .schema import (
    BUSY_TIMEOUT_MS,
    DEGRADED_BUSY_TIMEOUT_MS,
    LOG_COLUMNS,
    REPLAY_REQUEST_SQL,
    connect_writer,
)

Row = dict[str, Any]
Values = tuple[Any, ...]
#: Rows per INSERT statement at most (31 columns: 1,984 parameters, under SQLite's limit).
MULTI_ROWS = 64
_ROW_PARAMS = "(" + ", ".join("?" * len(LOG_COLUMNS)) + ")"
INSERT_VALUES_SQL = f"INSERT INTO request_log ({', '.join(LOG_COLUMNS)}) VALUES {_ROW_PARAMS}"


class LogStore:
    def __init__(self, path: Path, pragmas: tuple[str, ...] = ()) -> None:
        self.path = path
        self.pragmas = pragmas
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        """Connect (and migrate) now: at start-up a bad path fails loudly."""
        self._conn = connect_writer(self.path, self.pragmas)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._conn = connect_writer(self.path, self.pragmas)
            except sqlite3.Error as exc:  # a file that cannot be opened (yet) is a fault too
                raise sqlite3.OperationalError(str(exc)) from exc
        return self._conn

    def insert(self, rows: Sequence[Row] | Sequence[Values], *, replay: bool = False) -> tuple[int, list[tuple[Any, Exception]]]:
        """Write `rows` in one transaction: (rows inserted, [(row, why) SQLite refused]).

        Live rows are value tuples in LOG_COLUMNS order; with `replay`, rows are dicts (from
        the spill file) and a row whose request_id is already logged is skipped (not counted)."""
        conn = self._connection()
        sql = REPLAY_REQUEST_SQL if replay else INSERT_VALUES_SQL
        # Counted by rowcount (rows this statement inserted), not total_changes, which also
        # counts what the rollup trigger writes for each row.
        try:
            conn.execute("BEGIN IMMEDIATE")
            inserted = conn.executemany(sql, rows).rowcount if replay else _insert_values(conn, rows)
            conn.execute("COMMIT")
            return inserted, []
        except sqlite3.OperationalError:
            _rollback(conn)
            raise
        except Exception:  # a row: integrity, binding, overflow, …
            _rollback(conn)
        refused: list[tuple[Row, Exception]] = []
        inserted = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                try:
                    inserted += conn.execute(sql, row).rowcount
                except sqlite3.OperationalError:
                    raise
                except Exception as exc:
                    refused.append((row, exc))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return inserted, refused

    def faulted(self, exc: sqlite3.Error) -> None:
        """After an OperationalError: come back quickly to a lock; keep the connection through
        a full disk (closing it would checkpoint and delete the WAL: more writes on a full
        disk); reopen after anything else (a connection opened read-only, or on a file since
        replaced, stays that way)."""
        if self._conn is None:
            return
        name = getattr(exc, "sqlite_errorname", "")
        if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            self._conn.execute(f"PRAGMA busy_timeout={DEGRADED_BUSY_TIMEOUT_MS}")
        elif name != "SQLITE_FULL":
            self.close()

    def recovered(self) -> None:
        if self._conn is not None:
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _insert_values(conn: sqlite3.Connection, rows: Sequence[Values]) -> int:
    """Insert value tuples with multi-row statements of 64, 32, …, 1 rows: sqlite3 lets go of
    the GIL around each statement's step and takes it back after, and a thread taking the GIL
    back makes the event loop hand it over, so one statement per row (executemany) meant two
    hand-offs per request; now a batch of 500 rows takes 12 statements."""
    inserted = i = 0
    total = len(rows)
    while i < total:
        size = MULTI_ROWS
        while size > total - i:
            size //= 2
        chunk = rows[i : i + size]
        inserted += conn.execute(_insert_sql(size), [v for row in chunk for v in row]).rowcount
        i += size
    return inserted


@functools.lru_cache(maxsize=8)
def _insert_sql(rows: int) -> str:
    return INSERT_VALUES_SQL if rows == 1 else INSERT_VALUES_SQL + (", " + _ROW_PARAMS) * (rows - 1)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
