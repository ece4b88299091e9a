"""Reading the request log: read-only connection, the build clock, one Table per query."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from proxy.logdb.rollups import has_rollups
from proxy.logdb.schema import GUIDE_COLUMNS, table_columns

from . import queries as q
from . import rolled, views
from .aggregates import BUCKET_NOTE, Aggregates, value_at
from .analysis.series import window_totals
from .cache import KEEP_DAYS, ReportCache
from .catalogue import TableDef, Window, stamp
from .errors import DatabaseError, Unavailable
from .sources import Sources
from .views import VIEWS, View, breakdown_views

T = TypeVar("T")


@dataclass(frozen=True)
class Clock:
    """The build's "now": the instant every window ends (exclusive).

    `Clock.at(moment)` puts it one millisecond past the build moment, so every request logged up
    to that moment is in (the log's timestamps are milliseconds, truncated), including one
    logged in the same second or millisecond as the build. The moment is SOURCE_DATE_EPOCH when
    set (reproducible builds: the same epoch gives the same windows), else the wall clock with
    its fractions of a second.
    """

    now: datetime

    @classmethod
    def at(cls, epoch: float) -> Clock:
        millis = math.floor(epoch * 1000) + 1
        return cls(datetime.fromtimestamp(millis // 1000, UTC) + timedelta(milliseconds=millis % 1000))

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None,
                         wall: Callable[[], float] | None = None) -> Clock:
        env = os.environ if environ is None else environ
        raw = env.get("SOURCE_DATE_EPOCH", "").strip()
        if raw:
            try:
                return cls.at(int(raw))
            except ValueError:
                raise DatabaseError(f"SOURCE_DATE_EPOCH must be whole seconds, got {raw!r}") from None
        return cls.at((wall or time.time)())

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
        # Autocommit: the Reader opens the build's one transaction (one snapshot of the log).
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
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


#: queries.LOG_EXTENT with rollups: the current hour's rows (earlier hours: the report cache's count of
#: the rollups, which keep pruned rows), and the first hour rolled up when it is older than the
#: first row.
LOG_EXTENT_ROLLUPS = """
SELECT (SELECT COUNT(*) FROM request_log WHERE timestamp >= :hour_start AND timestamp < :end)
         AS recent,
       (SELECT MIN(hour) FROM rollup_hourly WHERE hour > '') AS first_hour,
       (SELECT MIN(timestamp) FROM request_log WHERE timestamp < :end) AS first,
       (SELECT MAX(timestamp) FROM request_log WHERE timestamp < :end) AS last
"""

#: What the pages say when the tables come from the raw rows of a log without rollups.
NO_ROLLUPS = ("This log has no hourly rollups (a guide-only log, or an older gateway's not "
              "migrated since), so every table is read from its raw rows: exact, but slower on "
              "a big log. `python -m proxy migrate --db FILE` adds them.")
RAW_BY_CHOICE = "Built with --no-rollups: every table is read from the raw rows (exact percentiles)."
#: Tables whose percentiles come from histograms when the log has rollups (their notes say so).
PERCENTILE_TABLES = frozenset({
    "period_summary", "anomalies", "daily_health", "latency_percentiles",
    "daily_latency_percentiles", "ttft_by_model", "stream_speed", "daily_stream_speed",
    "gateway_overhead",
})


@dataclass
class Reader:
    """One build's read of the log: its columns, the clock, and the window aggregates.

    On a log with rollups the long windows come from the report cache (`cache`: its file, or
    None for memory, this build only) via `aggregates`; `rollups=False` reads every table from
    the raw rows as a log without rollups is read. Call finish() when the build has read all
    it needs (it saves the cache); closing the connection without it leaves the cache as it was.
    """

    conn: sqlite3.Connection
    clock: Clock
    columns: set[str] = field(default_factory=set)
    sources: Sources = field(default_factory=lambda: Sources())
    cache: Path | None = None
    rollups: bool = True
    notices: list[str] = field(default_factory=list)
    _memo: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.columns = table_columns(self.conn)
        present = has_rollups(self.conn)
        if not present:
            self.notices.append(NO_ROLLUPS)
        elif not self.rollups:
            self.notices.append(RAW_BY_CHOICE)
        self.rollups = self.rollups and present
        cache = None
        if self.rollups:
            try:
                cache = ReportCache.attach(self.conn, self.columns, self._views(), self.cache)
            except sqlite3.DatabaseError as exc:
                raise DatabaseError(f"cannot read the database ({exc})") from None
            if cache.note:
                self.notices.append(cache.note)
        elif not self.conn.in_transaction:
            self.conn.execute("BEGIN")  # every table from one snapshot of the log
        self.aggregates = Aggregates(self, cache)

    def _views(self) -> tuple[View, ...]:
        keys = self.sources.breakdowns
        if not keys:
            return VIEWS
        from .breakdowns import combo_params

        return VIEWS + breakdown_views(*combo_params(keys))

    def finish(self) -> None:
        """Drop cached days no window needs any more and save the cache (one commit)."""
        cache = self.aggregates.cache
        if cache is None:
            return
        keep = self.clock.now - timedelta(days=KEEP_DAYS)
        if self.aggregates.earliest is not None:
            keep = min(keep, self.aggregates.earliest)
        try:
            cache.prune(keep.strftime("%Y-%m-%d"))
            cache.commit()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot save the report cache ({exc})") from None

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
        """Requests logged before the clock, and the first and last timestamp. With rollups the
        count is the rollups' (whole hours: they keep pruned rows) plus the current hour's rows."""
        def run() -> dict[str, object]:
            end = self.clock.now
            if not self.rollups:
                return self._all(q.LOG_EXTENT, {"end": stamp(end)})[0]
            hour = end.replace(minute=0, second=0, microsecond=0)
            found = self._all(LOG_EXTENT_ROLLUPS, {"end": stamp(end), "hour_start": stamp(hour)})[0]
            first, rolled = found["first"], found["first_hour"]
            if rolled and (not first or str(rolled) < f"{str(first)[:13]}:00:00"):
                first = rolled  # rows pruned: the rollups reach further back
            cache = self.aggregates.cache
            assert cache is not None
            try:
                before = cache.requests_until(hour.strftime("%Y-%m-%d %H:00:00"))
            except sqlite3.DatabaseError as exc:
                raise DatabaseError(f"cannot read the database ({exc})") from None
            return {"requests": before + int(found["recent"]), "first": first, "last": found["last"]}
        return self.memo("extent", run)

    def table(self, spec: TableDef) -> Table:
        bounds = spec.window.bounds(self.clock.now)
        missing = tuple(sorted(spec.requires - self.columns))
        if missing:
            return Table(spec, [], bounds["start"], bounds["end"], missing)
        shown = self._noted(spec)
        try:
            if self.rollups and spec.name in rolled.TABLES:
                rows = rolled.TABLES[spec.name](self, spec, bounds)
            elif spec.compute is not None:
                rows = spec.compute(self, spec, bounds)
            elif spec.name == "period_summary":
                rows = self.period_summary()
            else:
                params = {**bounds, **spec.params}
                if spec.name == "todays_stats":
                    hour = self.clock.now - timedelta(hours=1)
                    params["hour_start"] = stamp(hour)
                rows = self._all(spec.sql, params)
        except Unavailable as exc:
            return Table(shown, [], bounds["start"], bounds["end"], unavailable=str(exc))
        return Table(shown, rows, bounds["start"], bounds["end"])

    def _noted(self, spec: TableDef) -> TableDef:
        """The table as the page shows it: where percentiles come from histograms, it says so."""
        from .breakdowns import totals_rows

        if self.rollups and (spec.name in PERCENTILE_TABLES or spec.compute is totals_rows):
            return replace(spec, note=f"{spec.note} {BUCKET_NOTE}".strip())
        return spec

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
        if self.rollups:
            p95 = value_at(self.aggregates.histograms(views.LATENCY_ALL, start, end).get(("",), []), 95)
        elif counted:
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
