"""Reading the request log: read-only connection, the build clock, one Table per query."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from proxy.logdb.schema import GUIDE_COLUMNS, table_columns

from . import queries as q
from .analysis.series import window_totals
from .catalogue import TableDef, Window, stamp
from .errors import DatabaseError, Unavailable
from .sources import Sources

T = TypeVar("T")


@dataclass(frozen=True)
class Clock:
    """The build's "now": SOURCE_DATE_EPOCH when set (reproducible builds), else the wall clock."""

    now: datetime

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Clock:
        env = os.environ if environ is None else environ
        raw = env.get("SOURCE_DATE_EPOCH", "").strip()
        if raw:
            try:
                epoch = int(raw)
            except ValueError:
                raise DatabaseError(f"SOURCE_DATE_EPOCH must be whole seconds, got {raw!r}") from None
        else:
            epoch = int(time.time())
        return cls(datetime.fromtimestamp(epoch, UTC))

    @property
    def epoch(self) -> int:
        return int(self.now.timestamp())

    @property
    def label(self) -> str:
        return self.now.strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Table:
    spec: TableDef
    rows: list[dict[str, object]]
    start: str
    end: str
    missing: tuple[str, ...] = ()  # columns this database never recorded
    unavailable: str = ""  # why a computed table has no data (e.g. no keys.db), shown instead

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def recorded(self) -> bool:
        return not self.missing


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open the log without ever writing to it; raise DatabaseError with a one-line reason."""
    if not path.exists():
        raise DatabaseError(f"{path}: database not found")
    if not path.is_file():
        raise DatabaseError(f"{path}: not a file")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only=1")
        # Percentiles and GROUP BYs sort hundreds of thousands of rows: keep the sorter in
        # memory (64 MiB of page cache) instead of spilling to temporary files. Halves them.
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-65536")
        columns = table_columns(conn)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: cannot read the database ({exc})") from None
    if not columns:
        raise DatabaseError(f"{path}: no request_log table (is this the gateway's log database?)")
    absent = [c for c in GUIDE_COLUMNS if c not in columns]
    if absent:
        raise DatabaseError(f"{path}: request_log lacks the guide's column(s) {', '.join(absent)}")
    return conn


@dataclass
class Reader:
    conn: sqlite3.Connection
    clock: Clock
    columns: set[str] = field(default_factory=set)
    sources: Sources = field(default_factory=lambda: Sources())
    _memo: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.columns = table_columns(self.conn)

    def query(self, sql: str, params: dict[str, object]) -> list[dict[str, object]]:
        """Rows of one read-only statement (the analyses' way into the log)."""
        return self._all(sql, params)

    def rows(self, sql: str, params: dict[str, object]) -> list[sqlite3.Row]:
        """As query(), without a dict per row: for long results read once, in order."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot read the database ({exc})") from None

    @staticmethod
    def stamp(moment: datetime) -> str:
        return stamp(moment)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """Compute once per build what several tables share (e.g. one scan feeding three)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[return-value]

    def _all(self, sql: str, params: dict[str, object]) -> list[dict[str, object]]:
        try:
            return [dict(row) for row in self.conn.execute(sql, params)]
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot read the database ({exc})") from None

    def extent(self) -> dict[str, object]:
        return self.memo("extent", lambda: self._all(q.LOG_EXTENT, {"end": stamp(self.clock.now)})[0])

    def table(self, spec: TableDef) -> Table:
        bounds = spec.window.bounds(self.clock.now)
        missing = tuple(sorted(spec.requires - self.columns))
        if missing:
            return Table(spec, [], bounds["start"], bounds["end"], missing)
        if spec.compute is not None:
            try:
                rows = spec.compute(self, spec, bounds)
            except Unavailable as exc:
                return Table(spec, [], bounds["start"], bounds["end"], unavailable=str(exc))
            return Table(spec, rows, bounds["start"], bounds["end"])
        if spec.name == "period_summary":
            rows = self.period_summary()
        else:
            params = {**bounds, **spec.params}
            if spec.name == "todays_stats":
                hour = self.clock.now - timedelta(hours=1)
                params["hour_start"] = stamp(hour)
            rows = self._all(spec.sql, params)
        return Table(spec, rows, bounds["start"], bounds["end"])

    # -- the overview's periods with their change against the period before ----------------
    def period_summary(self) -> list[dict[str, object]]:
        now = self.clock.now
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        day = timedelta(days=1)
        periods = (
            ("Today", (midnight, now), (midnight - day, now - day)),
            ("Last 7 days", (now - 7 * day, now), (now - 14 * day, now - 7 * day)),
            ("Last 30 days", (now - 30 * day, now), (now - 60 * day, now - 30 * day)),
        )
        rows = []
        for label, current, previous in periods:
            cur, prev = self._totals(*current), self._totals(*previous)
            row: dict[str, object] = {"period": label}
            for key in ("requests", "tokens", "cost", "error_rate", "p95_latency"):
                row[key] = cur[key]
                row[f"{key}_change"] = _change(cur[key], prev[key])
            rows.append(row)
        return rows

    def _totals(self, start: datetime, end: datetime) -> dict[str, object]:
        params = {"start": stamp(start), "end": stamp(end)}
        # The six windows are unions of the shared scan's segments (analysis/series.py).
        totals = window_totals(self, start, end) or self._all(q.PERIOD_TOTALS, params)[0]
        requests, errors = int(totals["requests"]), int(totals["errors"])
        counted = int(totals["reached"]) if "reached" in totals else int(
            self._all(q.LATENCY_COUNT, params)[0]["n"])
        p95 = None
        if counted:
            rank = (95 * counted + 99) // 100
            found = self._all(q.LATENCY_AT_RANK, {**params, "offset": counted - rank})
            p95 = round(float(found[0]["latency"]), 4) if found else None
        return {
            "requests": requests,
            "tokens": int(totals["tokens"]),
            "cost": totals["cost"],
            "error_rate": round(100.0 * errors / requests, 2) if requests else None,
            "p95_latency": p95,
        }


def _change(current: object, previous: object) -> float | None:
    """Relative change in percent; None when there is nothing to compare with."""
    if current is None or previous is None or not previous:
        return None
    return round(100.0 * (float(current) - float(previous)) / float(previous), 1)


__all__ = ["Clock", "Reader", "Table", "Window", "open_readonly"]
