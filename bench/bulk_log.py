"""Big request logs, fast: for the benchmarks that need millions of rows (not through the gateway).

`bulk_log(path, rows=5_000_000, days=90)` generates a tenth of the rows with proxy.history over
a tenth of the days, inserts them in one transaction, then copies them nine times with SQL
(`INSERT ... SELECT`, timestamps moved back by a tenth of the window each time, request ids
suffixed), so the whole window is covered. Every insert goes through the table's trigger, so
the rollups are exactly what the gateway would have kept. About 40 s per million rows on two
busy cores.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from proxy.history import generate_history
from proxy.logdb.schema import INSERT_REQUEST_SQL, LOG_COLUMNS, connect_writer

COPIES = 10
_BATCH = 10_000


def row_count(path: Path) -> int | None:
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()


def bulk_log(path: Path, *, rows: int, days: int = 90, seed: int = 1, now: float | None = None,
             quiet: bool = False) -> float | None:
    """Make `path` a log of exactly `rows` rows over `days` days; None if it already was one."""
    if row_count(path) == rows:
        return None
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    now = time.time() if now is None else now
    copies = COPIES if days >= COPIES and rows >= COPIES else 1
    span = days / copies
    first = rows - (rows // copies) * (copies - 1)  # the remainder goes to the first slice
    conn = connect_writer(path)
    try:
        conn.execute("BEGIN")
        batch = []
        for record in generate_history(days=max(1, round(span)), rows=first, seed=seed, now=now):
            batch.append(record.as_row())
            if len(batch) == _BATCH:
                conn.executemany(INSERT_REQUEST_SQL, batch)
                batch = []
        conn.executemany(INSERT_REQUEST_SQL, batch)
        conn.execute("COMMIT")
        last = conn.execute("SELECT max(id) FROM request_log").fetchone()[0] or 0
        share = rows // copies
        others = [c for c in LOG_COLUMNS if c not in ("timestamp", "request_id")]
        for k in range(1, copies):
            if not quiet:
                print(f"  {path.name}: slice {k + 1}/{copies}", flush=True)
            conn.execute("BEGIN")
            conn.execute(
                f"INSERT INTO request_log (timestamp, request_id, {', '.join(others)}) "
                f"SELECT strftime('%Y-%m-%d %H:%M:%f', timestamp, :shift), request_id || :suffix, "
                f"{', '.join(others)} FROM request_log WHERE id <= :last ORDER BY id LIMIT :share",
                {"shift": f"-{k * span} days", "suffix": f"-copy{k}", "last": last, "share": share})
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return time.perf_counter() - started
