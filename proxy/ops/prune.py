"""Delete request-log rows older than a retention window, without blocking the gateway.

Rows go in batches, each deleted in its own short write transaction: the gateway's writer
waits at most one batch (milliseconds), never the whole prune. With an archive folder, each
batch is first appended to a per-month archive (gzip JSON lines or a SQLite file) and made
durable, and only then deleted, so an interrupted prune loses nothing (a re-run may archive a
row twice in JSON lines; `id` identifies it; the SQLite archive keeps one row per id).

Space: deleted pages go to SQLite's free list and are reused by new rows, so with a steady
retention the file stops growing without any vacuum. `vacuum=True` shrinks the file with a
full VACUUM (it rewrites the database and holds the write lock throughout; the gateway's
writer keeps its rows in memory and retries, so nothing is lost, but run it at a quiet hour;
it needs free disk about the size of the database). A database already in
auto_vacuum=INCREMENTAL mode is instead trimmed in small incremental_vacuum steps.

Only litellm.db is touched: virtual keys and budget state live in keys.db.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OperationError
from ..logdb.record import utc_timestamp
from ..logdb.schema import WRITER_PRAGMAS, migrate, table_columns

log = logging.getLogger("proxy.ops.prune")

ARCHIVE_FORMATS = ("jsonl", "sqlite")
JOURNAL_SIZE_LIMIT = next(p for p in WRITER_PRAGMAS if "journal_size_limit" in p)

COUNT_OLD_SQL = "SELECT COUNT(*) FROM request_log WHERE timestamp < :cutoff"
# Oldest first through the timestamp index: already-deleted rows are simply gone from it.
SELECT_OLD_SQL = "SELECT {cols} FROM request_log WHERE timestamp < :cutoff ORDER BY timestamp LIMIT :limit"
DELETE_OLD_SQL = (
    "DELETE FROM request_log WHERE id IN "
    "(SELECT id FROM request_log WHERE timestamp < :cutoff ORDER BY timestamp LIMIT :limit)"
)
DELETE_ID_SQL = "DELETE FROM request_log WHERE id = :id"
# OR IGNORE, not OR REPLACE: a replaced row would be rolled up again by the archive's trigger.
ARCHIVE_INSERT_SQL = "INSERT OR IGNORE INTO request_log ({cols}) VALUES ({params})"


@dataclass
class PruneResult:
    cutoff: str
    deleted: int = 0
    archived: dict[str, int] = field(default_factory=dict)  # archive file -> rows
    vacuumed: str | None = None  # 'full', 'incremental' or None
    size_before: int = 0
    size_after: int = 0
    stopped: bool = False  # interrupted by should_stop (the gateway shutting down)


def cutoff_for(days: float, now: float | None = None) -> str:
    """Rows with timestamp < this are outside a `days` window ending at `now`."""
    if days <= 0:
        raise OperationError(f"days must be at least 1, got {days:g}")
    return utc_timestamp((time.time() if now is None else now) - days * 86400)


def connect_log(db_path: str | Path) -> sqlite3.Connection:
    """A second writer beside the gateway's: autocommit, WAL-friendly, patient on locks."""
    path = Path(db_path)
    if not path.is_file():
        raise OperationError(f"{path}: no such database (is --db right?)")
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA busy_timeout=10000")
    # Per connection: a WAL reset by this one must shrink the file as the writer's would.
    conn.execute(JOURNAL_SIZE_LIMIT)
    if "timestamp" not in table_columns(conn):
        conn.close()
        raise OperationError(f"{path}: has no request_log table; is this the request log?")
    return conn


def count_old(db_path: str | Path, days: float, *, now: float | None = None) -> tuple[str, int]:
    cutoff = cutoff_for(days, now)
    conn = connect_log(db_path)
    try:
        return cutoff, conn.execute(COUNT_OLD_SQL, {"cutoff": cutoff}).fetchone()[0]
    finally:
        conn.close()


def prune_request_log(
    db_path: str | Path,
    days: float,
    *,
    archive_dir: str | Path | None = None,
    archive_format: str = "jsonl",
    batch_size: int = 2000,
    vacuum: bool = False,
    now: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> PruneResult:
    """Delete rows older than `days` (optionally archiving them first); see the module doc."""
    if archive_format not in ARCHIVE_FORMATS:
        raise OperationError(f"archive format must be one of {', '.join(ARCHIVE_FORMATS)}")
    if batch_size < 1:
        raise OperationError("batch size must be at least 1")
    result = PruneResult(cutoff=cutoff_for(days, now))
    path = Path(db_path)
    conn = connect_log(path)
    try:
        result.size_before = _size(path)
        if archive_dir is None:
            _delete_batches(conn, result, batch_size, should_stop)
        else:
            archive = Path(archive_dir)
            archive.mkdir(parents=True, exist_ok=True)
            _archive_and_delete(conn, result, archive, archive_format, batch_size, should_stop)
        if not result.stopped:
            result.vacuumed = _reclaim(conn, full=vacuum)
            # Leave the -wal file small: the deletes went through it.
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        result.size_after = _size(path)
    except sqlite3.DatabaseError as exc:
        raise OperationError(f"{path}: prune failed: {exc}") from None
    finally:
        conn.close()
    return result


def _delete_batches(
    conn: sqlite3.Connection, result: PruneResult, batch_size: int, should_stop: Callable[[], bool]
) -> None:
    while True:
        if should_stop():
            result.stopped = True
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = conn.execute(DELETE_OLD_SQL, {"cutoff": result.cutoff, "limit": batch_size}).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        result.deleted += deleted
        if deleted < batch_size:
            return


def _archive_and_delete(
    conn: sqlite3.Connection,
    result: PruneResult,
    folder: Path,
    archive_format: str,
    batch_size: int,
    should_stop: Callable[[], bool],
) -> None:
    columns = ["id"] + sorted(table_columns(conn) - {"id"})
    select = SELECT_OLD_SQL.format(cols=", ".join(columns))
    while True:
        if should_stop():
            result.stopped = True
            return
        # Read outside any write transaction: logged rows are never updated, so the batch
        # cannot change between this read and the delete below.
        rows = [dict(zip(columns, row, strict=True)) for row in
                conn.execute(select, {"cutoff": result.cutoff, "limit": batch_size})]
        if not rows:
            return
        for month, month_rows in _by_month(rows).items():
            target = _write_archive(folder, month, month_rows, archive_format, columns)
            result.archived[str(target)] = result.archived.get(str(target), 0) + len(month_rows)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(DELETE_ID_SQL, ({"id": row["id"]} for row in rows))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        result.deleted += len(rows)
        if len(rows) < batch_size:
            return


def _by_month(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    months: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        months.setdefault(str(row["timestamp"])[:7], []).append(row)
    return months


def archive_path(folder: Path, month: str, archive_format: str) -> Path:
    suffix = ".jsonl.gz" if archive_format == "jsonl" else ".db"
    return folder / f"request_log-{month}{suffix}"


def _write_archive(
    folder: Path, month: str, rows: list[dict[str, Any]], archive_format: str, columns: list[str]
) -> Path:
    target = archive_path(folder, month, archive_format)
    if archive_format == "jsonl":
        payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        # One gzip member per batch: concatenated members are one valid .gz stream, and a crash
        # can only cut off the batch whose rows are still in the database.
        with open(target, "ab") as raw:
            raw.write(gzip.compress(payload.encode("utf-8"), mtime=0))
            raw.flush()
            os.fsync(raw.fileno())
        return target
    archive = sqlite3.connect(target, isolation_level=None)
    try:
        archive.execute("PRAGMA synchronous=FULL")
        migrate(archive)
        present = ["id"] + sorted((table_columns(archive) - {"id"}) & set(columns))
        missing = set(columns) - set(present)
        if missing:
            raise OperationError(f"{target}: archive lacks columns {sorted(missing)}")
        sql = ARCHIVE_INSERT_SQL.format(cols=", ".join(present), params=", ".join(f":{c}" for c in present))
        archive.execute("BEGIN")
        archive.executemany(sql, rows)
        archive.execute("COMMIT")
    finally:
        archive.close()
    return target


def read_archive(path: str | Path) -> list[dict[str, Any]]:
    """Every row of one archive file, as dicts (for restores and tests)."""
    path = Path(path)
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM request_log ORDER BY id")]
    finally:
        conn.close()


def _reclaim(conn: sqlite3.Connection, *, full: bool) -> str | None:
    if full:
        conn.execute("VACUUM")
        return "full"
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
        # Small steps, each its own transaction, so the writer never waits long.
        while conn.execute("PRAGMA freelist_count").fetchone()[0] > 0:
            conn.execute("PRAGMA incremental_vacuum(500)").fetchall()
        return "incremental"
    return None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
