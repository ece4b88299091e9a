"""Gather several hosts' request logs into one database for the report and Datasette.

`python -m proxy merge --into report.db HOST_A.db HOST_B.db ...` copies the rows of each shard
(typically the backups `make backup` takes on each host, but a live litellm.db works too) into
`report.db`, a normal log database: same migrations, rollups kept by the same trigger, so
`make report DB=report.db` and `make explore DB=report.db` take it like any other.

- Host: each copied row gets `host`, the shard's name: `NAME=PATH` on the command line, else
  the hostname the gateway recorded in the shard (`log_meta`), else the file name's stem. Rows
  that already carry a host (a shard that is itself a merge) keep theirs.
- Incremental and exact: `merge_sources` in the target remembers, per shard, the highest shard
  row id merged and that row's request_id (a shard is recognised by the random database_id its
  migration made, which backups carry, so each day's backup file continues where the previous
  one stopped). Only rows past that mark are read. A row is copied only if no row with its
  request_id is in the target yet, so overlapping merges, a shard given twice, or the same rows
  under two names never copy a row twice. If the mark no longer fits the file (its row now has
  another request_id: a different database or a log that was emptied), the whole shard is
  scanned, still deduplicated by request_id. Rows without a request_id (written by a gateway
  older than request ids) are given `<database_id>:<id>`.
- Safe beside a writing gateway: the shard is only ever read, in batches of whole transactions
  (each batch reads one consistent snapshot; rows are never updated, so the batches add up to
  the shard as of the last one), and never holds the shard's write lock. Rows logged during
  the merge past the id it started from wait for the next merge.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OperationError
from ..logdb.record import utc_timestamp
from ..logdb.schema import WRITER_PRAGMAS, migrate

log = logging.getLogger("proxy.ops.merge")

SHARD = "shard"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# `make backup` names files <stem>-YYYYMMDDTHHMMSSZ.db: the stamp is no part of a host's name.
_BACKUP_STAMP_RE = re.compile(r"-\d{8}T\d{6}Z$")

TABLES_SQL = "SELECT name FROM sqlite_master WHERE type = 'table'"
SHARD_META_SQL = "SELECT key, value FROM shard.log_meta WHERE key IN ('database_id', 'host')"
SHARD_COLUMNS_SQL = "SELECT name FROM pragma_table_info('request_log', 'shard')"
STATE_SQL = "SELECT last_id, last_request_id FROM merge_sources WHERE source = :source"
ADD_SOURCE_SQL = """
INSERT INTO merge_sources (source, host, path) VALUES (:source, :host, :path)
ON CONFLICT (source) DO UPDATE SET host = excluded.host, path = excluded.path
"""
# The first statement of each batch writes the target: it takes the target's write lock (and
# its newest snapshot) before anything is read, so two merges into one file take turns.
TOUCH_SOURCE_SQL = "UPDATE merge_sources SET merged_at = :now WHERE source = :source"
SHARD_ROW_SQL = "SELECT {request_id} FROM shard.request_log WHERE id = :id"
SHARD_ID_RANGE_SQL = "SELECT min(id), max(id) FROM shard.request_log"
SHARD_MAX_ID_SQL = "SELECT ifnull(max(id), 0) FROM shard.request_log"
BATCH_END_SQL = """
SELECT max(id) FROM (
    SELECT id FROM shard.request_log WHERE id > :after AND id <= :end ORDER BY id LIMIT :limit
)
"""
COPY_SQL = """
INSERT INTO main.request_log ({columns}, request_id, host)
SELECT {values}, {request_id}, {host}
FROM shard.request_log AS s
WHERE s.id > :after AND s.id <= :upto
  AND NOT EXISTS (SELECT 1 FROM main.request_log AS m WHERE m.request_id = {request_id})
ORDER BY s.id
"""
ADVANCE_SQL = """
UPDATE merge_sources
SET last_id = CASE WHEN :older THEN last_id ELSE :upto END,
    last_request_id = CASE WHEN :older THEN last_request_id ELSE :request_id END,
    rows = rows + :copied, merged_at = :now
WHERE source = :source
"""


@dataclass
class ShardResult:
    path: Path
    host: str
    source: str  # the shard's database_id, or host:NAME for a file without one
    copied: int = 0  # new rows
    seen: int = 0  # shard rows read (copied + already in the target)
    full_scan: bool = False  # the high-water mark did not fit: every row was checked
    older: bool = False  # an older copy than the last merged: checked, the mark left alone
    last_id: int = 0


@dataclass
class MergeResult:
    target: Path
    shards: list[ShardResult] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(s.copied for s in self.shards)


def parse_shard(text: str) -> tuple[str | None, Path]:
    """`PATH` or `NAME=PATH` (an existing file named like NAME=PATH is a path)."""
    name, sep, rest = text.partition("=")
    if sep and rest and _NAME_RE.fullmatch(name) and not Path(text).exists():
        return name, Path(rest)
    return None, Path(text)


def default_host(path: Path) -> str:
    return _BACKUP_STAMP_RE.sub("", path.stem) or path.stem


def connect_target(path: str | Path) -> sqlite3.Connection:
    """The merged database: created if missing, migrated (rollup trigger included)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    tables = {row[0] for row in conn.execute(TABLES_SQL)}
    if tables and "request_log" not in tables:
        conn.close()
        # Never add a request log to keys.db or any other database given by mistake.
        raise OperationError(f"{path}: not a request log database; --into takes a new file or a merged one")
    for pragma in WRITER_PRAGMAS:
        conn.execute(pragma)
    migrate(conn)
    return conn


def merge_logs(
    target: str | Path, shards: list[tuple[str | None, str | Path]], *, batch_size: int = 20_000
) -> MergeResult:
    """Copy the rows of `shards` ((name or None, path) pairs) not yet in `target`."""
    if batch_size < 1:
        raise OperationError("batch size must be at least 1")
    target = Path(target)
    result = MergeResult(target)
    paths = []
    for name, path in shards:
        path = Path(path)
        if not path.is_file():
            raise OperationError(f"{path}: no such database")
        if target.exists() and path.resolve() == target.resolve():
            raise OperationError(f"{path}: is the --into database itself")
        paths.append((name, path))
    try:
        conn = connect_target(target)
    except sqlite3.DatabaseError as exc:
        raise OperationError(f"{target}: cannot open as a request log: {exc}") from None
    try:
        for name, path in paths:
            result.shards.append(_merge_one(conn, name, path, batch_size))
    finally:
        conn.close()
    return result


def _merge_one(conn: sqlite3.Connection, name: str | None, path: Path, batch_size: int) -> ShardResult:
    try:
        conn.execute(f"ATTACH DATABASE ? AS {SHARD}", (str(path),))
    except sqlite3.DatabaseError as exc:
        raise OperationError(f"{path}: cannot open: {exc}") from None
    try:
        return _copy_shard(conn, name, path, batch_size)
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise OperationError(f"{path}: merge failed: {exc}") from None
    finally:
        conn.execute(f"DETACH DATABASE {SHARD}")


def _copy_shard(conn: sqlite3.Connection, name: str | None, path: Path, batch_size: int) -> ShardResult:
    shard_columns = {row[0] for row in conn.execute(SHARD_COLUMNS_SQL)}
    if "timestamp" not in shard_columns:
        raise OperationError(f"{path}: not a Shin Gateway request log (no request_log table)")
    meta = _shard_meta(conn)
    host = name or meta.get("host") or default_host(path)
    source = meta.get("database_id") or f"host:{host}"
    shard = ShardResult(path, host, source)
    target_columns = {row[1] for row in conn.execute("PRAGMA main.table_info(request_log)")}
    # Only what both sides have: a newer shard's extra columns are dropped, an older shard's
    # missing ones take their defaults. id is the target's own; request_id and host are set.
    columns = sorted((shard_columns & target_columns) - {"id", "request_id", "host"})
    has_request_id = "request_id" in shard_columns
    request_id = "ifnull(s.request_id, :source || ':' || s.id)" if has_request_id else ":source || ':' || s.id"
    copy_sql = COPY_SQL.format(
        columns=", ".join(columns), values=", ".join(f"s.{c}" for c in columns), request_id=request_id,
        host="ifnull(s.host, :host)" if "host" in shard_columns else ":host")
    row_sql = SHARD_ROW_SQL.format(request_id="request_id" if has_request_id else "NULL")

    conn.execute(ADD_SOURCE_SQL, {"source": source, "host": host, "path": str(path)})
    after = _start_after(conn, source, shard, row_sql)
    end = conn.execute(SHARD_MAX_ID_SQL).fetchone()[0]
    while after < end:
        conn.execute("BEGIN")
        try:
            conn.execute(TOUCH_SOURCE_SQL, {"now": utc_timestamp(), "source": source})
            upto = conn.execute(BATCH_END_SQL, {"after": after, "end": end, "limit": batch_size}).fetchone()[0]
            if upto is None:  # rows past the mark were pruned meanwhile
                conn.execute("COMMIT")
                break
            inserted = conn.execute(copy_sql, {"after": after, "upto": upto, "source": source,
                                               "host": host}).rowcount
            seen = conn.execute("SELECT count(*) FROM shard.request_log WHERE id > ? AND id <= ?",
                                (after, upto)).fetchone()[0]
            mark = conn.execute(row_sql, {"id": upto}).fetchone()
            conn.execute(ADVANCE_SQL, {"upto": upto, "request_id": mark[0] if mark else None,
                                       "copied": inserted, "now": utc_timestamp(), "source": source,
                                       "older": shard.older})
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        shard.copied += inserted
        shard.seen += seen
        after = upto
        if not shard.older:
            shard.last_id = upto
    log.info("merge: %s (%s): %d new rows of %d read", path, host, shard.copied, shard.seen)
    return shard


def _shard_meta(conn: sqlite3.Connection) -> dict[str, str]:
    try:
        return {key: value for key, value in conn.execute(SHARD_META_SQL) if value}
    except sqlite3.OperationalError:  # a shard from before migration 0003: no log_meta
        return {}


def _start_after(conn: sqlite3.Connection, source: str, shard: ShardResult, row_sql: str) -> int:
    """The shard row id to continue after: the stored mark if it still fits the file, else 0."""
    state = conn.execute(STATE_SQL, {"source": source}).fetchone()
    if state is None or not state[0]:
        return 0
    last_id, last_request_id = state
    row = conn.execute(row_sql, {"id": last_id}).fetchone()
    if row is not None and row[0] == last_request_id:
        shard.last_id = last_id
        return last_id
    if row is None:
        oldest, newest = conn.execute(SHARD_ID_RANGE_SQL).fetchone()
        if oldest is not None and oldest > last_id:
            # Gone: retention pruned past the mark (oldest rows first); every row left is newer.
            shard.last_id = last_id
            return last_id
        if newest is not None and newest < last_id:
            # An older copy (yesterday's backup after today's): its rows are checked one by one
            # (by request_id), which copies only what today's file no longer has.
            shard.full_scan = shard.older = True
            log.info("merge: %s is older than what was merged from it; checking its rows", shard.path)
            return 0
    shard.full_scan = True
    log.warning("merge: %s: the high-water mark does not fit this file; checking every row", shard.path)
    return 0
