"""Keep the -wal file of the request log bounded.

The writer's automatic checkpoints (every ~1000 pages, PASSIVE, on the writer thread) cannot copy
frames past the snapshot of a reader that is still open: while Datasette runs a long query the
WAL grows, and after the reader leaves it only shrinks (to journal_size_limit) on the next
WAL reset, which needs a fully checkpointed log. If the gateway then goes quiet, nothing ever
completes that checkpoint. This runs one periodically, from its own connection on a thread:

- PASSIVE first: copies what it can, never waits for anyone, never blocks the writer.
- When PASSIVE got everything, TRUNCATE with busy_timeout=0: if no reader still uses the log,
  the file goes back to 0 bytes; if one does, SQLite answers busy at once and we try next time.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("proxy.ops.checkpoint")

PASSIVE_SQL = "PRAGMA wal_checkpoint(PASSIVE)"
TRUNCATE_SQL = "PRAGMA wal_checkpoint(TRUNCATE)"


@dataclass(frozen=True)
class CheckpointResult:
    busy: bool
    wal_frames: int  # frames in the log (-1: not in WAL mode)
    checkpointed: int  # frames copied into the database
    truncated: bool
    wal_bytes: int  # size of the -wal file afterwards


class Checkpointer:
    """Owns one connection; call `run_once()` from a worker thread (never the event loop)."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(db_path)
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # check_same_thread=False: asyncio.to_thread may pick a different worker each time;
            # calls never overlap (one task awaits each before the next).
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            self._conn = conn
        return self._conn

    def run_once(self) -> CheckpointResult:
        conn = self._connection()
        busy, frames, done = conn.execute(PASSIVE_SQL).fetchone()
        truncated = False
        if not busy and frames > 0 and done == frames:
            busy_t, frames_t, _ = conn.execute(TRUNCATE_SQL).fetchone()
            truncated = not busy_t and frames_t == 0
        result = CheckpointResult(bool(busy), frames, done, truncated, self.wal_bytes())
        if frames > 0 and done < frames:
            log.debug("checkpoint: %d of %d WAL frames copied (a reader holds the rest)", done, frames)
        return result

    def wal_bytes(self) -> int:
        wal = self.path.with_name(self.path.name + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
