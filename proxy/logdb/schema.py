"""Schema of the request log and the numbered migrations that build it.

Migrations are `migrations/NNNN_name.sql`, applied by `proxy.migrations` (shared with keys.db).
"""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

from .. import migrations

#: The guide's columns: the contract user scripts rely on (names, types and units).
GUIDE_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "user_id",
    "model",
    "messages",
    "response",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "latency",
    "status_code",
)

#: Columns the gateway adds (migration 0002); readers must cope with their absence.
DETAIL_COLUMNS: tuple[str, ...] = (
    "request_id",
    "endpoint",
    "stream",
    "key_hash",
    "key_alias",
    "team_id",
    "provider",
    "upstream_model",
    "api_base",
    "time_to_first_token",
    "upstream_latency",
    "error_type",
    "cached_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "cost_status",
    "client_ip",
    "metadata",
    # migration 0004
    "model_group",
    "attempts",
)

LOG_COLUMNS: tuple[str, ...] = GUIDE_COLUMNS + DETAIL_COLUMNS

INSERT_REQUEST_SQL = "INSERT INTO request_log ({cols}) VALUES ({params})".format(
    cols=", ".join(LOG_COLUMNS), params=", ".join(f":{c}" for c in LOG_COLUMNS)
)

#: Replay of spilled rows: a row whose request_id is already logged (a replay cut short after its
#: commit, by a crash) is skipped, so every row lands exactly once. idx_request_log_request_id.
REPLAY_REQUEST_SQL = (
    "INSERT INTO request_log ({cols}) SELECT {params} "
    "WHERE NOT EXISTS (SELECT 1 FROM request_log WHERE request_id = :request_id)"
).format(cols=", ".join(LOG_COLUMNS), params=", ".join(f":{c}" for c in LOG_COLUMNS))

#: Milliseconds SQLite waits for a lock before the writer sees "database is locked". Short, so
#: the writer thread comes back often enough to keep its queue bounded (it retries itself, and
#: spills after `request_log_spill_after`); shorter still while the log is degraded.
BUSY_TIMEOUT_MS = 1000
DEGRADED_BUSY_TIMEOUT_MS = 100

#: Writer-side pragmas. WAL lets Datasette and the report read while we write;
#: synchronous=NORMAL is durable across application crashes and costs no fsync per commit.
WRITER_PRAGMAS: tuple[str, ...] = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    # Keeps the -wal file from staying huge after a long reader pinned it.
    "PRAGMA journal_size_limit=67108864",
)


#: The gateway names its host in the database it writes (migration 0003's log_meta), so
#: `python -m proxy merge` can label a shard's rows without being told; written only on change.
RECORD_HOST_SQL = """
INSERT INTO log_meta (key, value) VALUES ('host', :host)
ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value
"""


def record_host(conn: sqlite3.Connection) -> None:
    """Name this host in log_meta when it is not named so yet (a convenience for merge only)."""
    host = socket.gethostname()
    try:
        row = conn.execute("SELECT value FROM log_meta WHERE key = 'host'").fetchone()
        if row is None or row[0] != host:
            conn.execute(RECORD_HOST_SQL, {"host": host})
    except sqlite3.DatabaseError:
        # A read-only or full file still takes the writer (it spills); merge can be told the name.
        pass


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the request log up to date; returns the schema version."""
    return migrations.apply(conn, __package__)


def connect_writer(path: str | Path, extra_pragmas: tuple[str, ...] = ()) -> sqlite3.Connection:
    """A connection for the single writer: autocommit mode, WAL, migrated."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        for pragma in WRITER_PRAGMAS + extra_pragmas:
            conn.execute(pragma)
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    record_host(conn)
    return conn


def table_columns(conn: sqlite3.Connection, table: str = "request_log") -> set[str]:
    """Columns present in `table`: readers use it to cope with guide-only databases."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
