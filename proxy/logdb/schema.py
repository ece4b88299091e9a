"""Schema of the request log and the numbered migrations that build it.

Migrations are `migrations/NNNN_name.sql`, applied in order inside one transaction each and
recorded in `PRAGMA user_version`, so opening any older database brings it up to date.
"""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

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
)

LOG_COLUMNS: tuple[str, ...] = GUIDE_COLUMNS + DETAIL_COLUMNS

INSERT_REQUEST_SQL = "INSERT INTO request_log ({cols}) VALUES ({params})".format(
    cols=", ".join(LOG_COLUMNS), params=", ".join(f":{c}" for c in LOG_COLUMNS)
)

#: Writer-side pragmas. WAL lets Datasette and the report read while we write;
#: synchronous=NORMAL is durable across application crashes and costs no fsync per commit.
WRITER_PRAGMAS: tuple[str, ...] = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    # Keeps the -wal file from staying huge after a long reader pinned it.
    "PRAGMA journal_size_limit=67108864",
)


def migrations() -> list[tuple[int, str, str]]:
    """All migrations as (number, name, sql), in order."""
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; returns the resulting schema version."""
    current = schema_version(conn)
    for number, _name, sql in migrations():
        if number <= current:
            continue
        # executescript() commits first, so run the statements inside an explicit transaction
        # ourselves: a failing migration leaves the database at the previous version.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number:d}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        current = number
    return current


def _statements(sql: str) -> list[str]:
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        statements.append(buffer.strip())
    return statements


def connect_writer(path: str | Path) -> sqlite3.Connection:
    """A connection for the single writer: autocommit mode, WAL, migrated."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    for pragma in WRITER_PRAGMAS:
        conn.execute(pragma)
    migrate(conn)
    return conn


def table_columns(conn: sqlite3.Connection, table: str = "request_log") -> set[str]:
    """Columns present in `table`: readers use it to cope with guide-only databases."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
