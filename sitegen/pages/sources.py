"""What the Models and Keys pages read besides the tables of the log: keys.db (read-only) and
per-entity totals over a window, from the report's aggregates when the log has rollups (cheap
at any size), else from the raw rows (an older log)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from .. import views
from ..errors import Unavailable
from ..rolled.base import as_int, group

if TYPE_CHECKING:
    from ..data import Reader

NO_KEYS_DB = ("No keys.db beside the log (nor at general_settings.keys_database_path or "
              "--keys-db): no virtual keys, users or teams to show.")

#: Totals per value of one column over a window, on a log read without rollups.
RAW_TOTALS = """
SELECT {column} AS value, COUNT(*) AS requests, SUM(cost) AS cost
FROM request_log WHERE timestamp >= :start AND timestamp < :end
GROUP BY {column}
"""
TOTALS_COLUMNS = frozenset({"key_hash", "user_id", "team_id"})


@contextmanager
def keys_db(path: Path | None) -> Iterator[sqlite3.Connection]:
    """keys.db opened read-only (query_only, mode=ro); Unavailable when there is none."""
    if path is None or not path.is_file():
        raise Unavailable(NO_KEYS_DB)
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only=1")
    except sqlite3.DatabaseError as exc:
        raise Unavailable(f"keys.db cannot be read ({exc}).") from None
    try:
        yield conn
    except sqlite3.DatabaseError as exc:
        raise Unavailable(f"keys.db cannot be read ({exc}).") from None
    finally:
        conn.close()


def tables_of(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def totals_by(reader: Reader, column: str, days: int) -> dict[object, tuple[int, float]]:
    """{value: (requests, cost)} over the last `days` days: from the report's who-view (the
    rollups and its cache; read by the Cost page's tables over the same window already), or
    from the raw rows on a log read without rollups."""
    assert column in TOTALS_COLUMNS
    if column not in reader.columns:
        return {}

    def compute() -> dict[object, tuple[int, float]]:
        now = reader.clock.now
        start = now - timedelta(days=days)
        if reader.aggregates.cache is None:
            rows = reader.rows(RAW_TOTALS.format(column=column), {
                "start": reader.stamp(start), "end": reader.stamp(now)})
            return {r["value"]: (int(r["requests"]), float(r["cost"] or 0.0)) for r in rows}
        found = group(reader.aggregates.counters(views.WHO, start, now), (column,), ("requests", "cost"))
        return {value: (as_int(r["requests"]), float(r["cost"] or 0.0))  # type: ignore[arg-type]
                for (value,), r in found.items()}

    return reader.memo(f"totals:{column}:{days}", compute)
