"""keys.db as this host's copy of the admin state in Redis.

While Redis is configured it is the source of truth; keys.db holds the last state this host
saw (rewritten after each reload and every few seconds while spend changes), so that a gateway
starting while Redis is down serves the keys it knew, and a Redis that lost its data (restarted
without persistence) is seeded again from it. A keys.db that is not yet a copy (a host's own
keys from before Redis) is backed up to `keys.db.pre-redis` before it is first overwritten:
`python -m proxy keys export --keys-db keys.db.pre-redis` adds those keys to Redis.

`PRAGMA application_id` marks a copy: no migration, and the file stays a normal keys.db that
the CLI and `keys export` read.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..records import GLOBAL
from .base import Snapshot
from .codecs import CODECS
from .sqlite import KeysDB

log = logging.getLogger("proxy.redis")

COPY_MARK = 0x53484E52  # "SHNR": this keys.db is a copy of Redis
BACKUP_SUFFIX = ".pre-redis"


GlobalState = tuple[float, str | None, float | None] | None


def rows_of(snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
    return {kind: [CODECS[kind].to_row(r) for r in records] for kind, records in snapshot.records.items()}


def has_content(snapshot: Snapshot) -> bool:
    return snapshot.global_budget is not None or any(snapshot.records.values())


class LocalCopy:
    """Synchronous; the backend runs it on a worker thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> tuple[Snapshot, bool] | None:
        """(the file's content, whether it is a copy of Redis), or None without a file."""
        if not self.path.exists():
            return None
        db = KeysDB(self.path)
        try:
            is_copy = db.conn.execute("PRAGMA application_id").fetchone()[0] == COPY_MARK
            return db.load(), is_copy
        finally:
            db.close()

    def mark(self) -> None:
        """Say this file is a copy of Redis (its own keys were seeded into Redis)."""
        db = KeysDB(self.path)
        try:
            db.conn.execute(f"PRAGMA application_id = {COPY_MARK}")
        finally:
            db.close()

    def write(self, snapshot: Snapshot) -> None:
        self.write_rows(rows_of(snapshot), snapshot.global_budget)

    def write_rows(self, rows: dict[str, list[dict[str, Any]]], global_budget: GlobalState) -> None:
        """Make keys.db hold exactly these rows in one transaction (backing up a file of this
        host's own keys first). Rows are built on the event loop (rows_of), written here."""
        current = self.read()
        if current is not None and not current[1] and has_content(current[0]):
            backup = self.path.with_name(self.path.name + BACKUP_SUFFIX)
            if not backup.exists():
                _backup(self.path, backup)
                log.warning(
                    "keys.db held keys of its own before Redis was configured: saved as %s (run "
                    "`python -m proxy keys export --keys-db %s` to add what Redis lacks)", backup, backup)
        db = KeysDB(self.path)
        try:
            with db.transaction() as conn:
                for kind, codec in CODECS.items():
                    conn.execute(f"DELETE FROM {codec.table}")
                    conn.executemany(codec.insert_sql, rows.get(kind, []))
                conn.execute("DELETE FROM budgets WHERE name = ?", (GLOBAL,))
            if global_budget is not None:
                spend, duration, reset_at = global_budget
                db.save_global(spend, duration, reset_at, time.time())
            db.conn.execute(f"PRAGMA application_id = {COPY_MARK}")
        finally:
            db.close()


def _backup(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
