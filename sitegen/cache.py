"""The report cache: per-hour and per-day aggregates of the log (sitegen/views.py), kept in a
SQLite file of the report's own so each build reads only what changed since the last.

The log is attached read-only as `main`; the cache is attached as `cache` (a file, or memory
for a one-off build). One transaction spans the whole build: the log is read at one snapshot,
and the cache moves forward with it or not at all.

What the cache holds, per view, for the days from its `covers_from` on:
- grain 'h': one row per hour and dimension values, computed from the rollups (the views
  they can answer) or from the raw rows of that hour;
- grain 'd': the same summed per UTC day.
An hour is recomputed whole when a row is logged into it (any row with an id above the last
one seen: the gateway's, a merge's, a spill replay's), so merged and late rows land in the
right hour; hours nothing touched are read as they are.

Safety: the cache names the log it belongs to (log_meta's database_id, and the file's path in
its own name) and the newest row it has seen (id, timestamp, request_id). A different
database, a restored backup (that row gone or changed), a changed view definition or
report.breakdowns, or an unreadable file: the cache (or that view) starts over from the log.
Deleting the file is always safe. Pruning: hours already cached keep their pruned rows'
numbers, as the rollups do; an hour recomputed later holds what is left.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .views import MAX, MIN, View, raw_sql

#: The view whose requests make the all-time count (requests_until).
TOTALS = "model"
#: Bump when the cache's own tables change shape: older files start over.
VERSION = 1
#: Days kept beyond the windows a build reads (older hours are dropped at the end of a build).
KEEP_DAYS = 70
#: Seconds a build waits for another build holding the same cache file, then builds without it.
BUSY_SECONDS = 10

META = """
CREATE TABLE IF NOT EXISTS cache.meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS cache.coverage (
    view TEXT PRIMARY KEY,
    covers_from TEXT NOT NULL,       -- 'YYYY-MM-DD': every hour from this day on is kept
    signature TEXT NOT NULL          -- hash of the view's SQL: a changed view starts over
);
"""


def default_dir(environ: dict[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/shin-report, else ~/.cache/shin-report."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shin-report"


def cache_file(folder: Path, db: Path, database_id: str) -> Path:
    """One file per log database and path: a backup built elsewhere keeps its own."""
    where = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:12]
    safe = "".join(c for c in database_id if c.isalnum())[:32] or "log"
    return folder / f"{safe}-{where}.sqlite"


def locate(conn: sqlite3.Connection, db: Path, folder: Path) -> Path | None:
    """The cache file for this log in `folder`; None for a log without an identity (no
    log_meta: no rollups either, so nothing to cache)."""
    try:
        found = conn.execute("SELECT value FROM log_meta WHERE key = 'database_id'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return cache_file(folder, db, str(found[0])) if found else None


def _day(label: str) -> str:
    return label[:10]


def _next_hour(label: str) -> str:
    moment = datetime.strptime(label, "%Y-%m-%d %H:%M:%S") + timedelta(hours=1)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _next_day(day: str) -> str:
    return (datetime.strptime(day, "%Y-%m-%d") + timedelta(days=1)).strftime("%Y-%m-%d")


def _ranges(hours: list[str]) -> list[tuple[str, str]]:
    """Sorted hour labels -> [start, end) ranges of consecutive hours, none across midnight."""
    out: list[tuple[str, str]] = []
    for hour in hours:
        end = _next_hour(hour)
        if out and out[-1][1] == hour and _day(out[-1][0]) == _day(hour):
            out[-1] = (out[-1][0], end)
        else:
            out.append((hour, end))
    return out


@dataclass
class Coverage:
    covers_from: str | None = None


class ReportCache:
    """The cache attached to a read-only log connection; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection, columns: set[str], views: tuple[View, ...],
                 path: Path | None) -> None:
        self.conn = conn
        self.columns = columns
        self.views = {v.name: v for v in views}
        self.path = path  # None: in memory, this build only
        self.note = ""  # why the cache file was not used, if it was not
        self._coverage: dict[str, str] = {}

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def attach(cls, conn: sqlite3.Connection, columns: set[str], views: tuple[View, ...],
               path: Path | None) -> ReportCache:
        """Attach the cache file (or memory), take its write lock and bring it up to date."""
        cache = cls(conn, columns, views, path)
        # The cache is written; the log cannot be (it is opened with mode=ro).
        conn.execute("PRAGMA query_only=0")
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                cache._open(path)
            except (OSError, sqlite3.DatabaseError) as exc:
                cache._abandon(f"report cache {path} not used ({exc}); this build reads the log")
        if cache.path is None:
            cache._open(None)
        cache.refresh()
        return cache

    def _open(self, path: Path | None) -> None:
        target = "':memory:'" if path is None else "?"
        args = () if path is None else (f"file:{path}?mode=rwc",)
        self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        try:
            self.conn.execute(f"ATTACH DATABASE {target} AS cache", args)
            self.conn.execute("BEGIN IMMEDIATE")  # the cache's write lock; the log is only read
            for statement in META.strip().split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute("SELECT COUNT(*) FROM cache.meta").fetchone()
        except sqlite3.DatabaseError:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if any(r[1] == "cache" for r in self.conn.execute("PRAGMA database_list")):
                self.conn.execute("DETACH DATABASE cache")
            if path is not None and path.exists() and not _locked(path):
                path.unlink()  # not a cache we can read: ours to replace
                return self._open(path)
            raise

    def _abandon(self, note: str) -> None:
        self.note = note
        self.path = None
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        if any(r[1] == "cache" for r in self.conn.execute("PRAGMA database_list")):
            self.conn.execute("DETACH DATABASE cache")

    # -- identity and new rows -----------------------------------------------------------------
    def _meta(self) -> dict[str, object]:
        return dict(self.conn.execute("SELECT key, value FROM cache.meta").fetchall())

    def _log_identity(self) -> tuple[str, tuple[object, ...]]:
        found = self.conn.execute(
            "SELECT value FROM main.log_meta WHERE key = 'database_id'").fetchone()
        top = self.conn.execute(
            "SELECT id, timestamp, request_id FROM main.request_log ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return (str(found[0]) if found else ""), (tuple(top) if top else (0, None, None))

    def refresh(self) -> None:
        """Check the cache belongs to this log as it is now, then recompute touched hours."""
        database_id, top = self._log_identity()
        meta = self._meta()
        seen = (meta.get("last_id"), meta.get("last_timestamp"), meta.get("last_request_id"))
        last_id = int(meta.get("last_id") or 0)  # type: ignore[call-overload]
        same = (meta.get("version") == VERSION and meta.get("database_id") == database_id)
        if same and last_id:
            row = self.conn.execute("SELECT id, timestamp, request_id FROM main.request_log "
                                    "WHERE id = ?", (last_id,)).fetchone()
            same = row is not None and tuple(row) == seen
        self._coverage = {}
        if not same:
            self._reset()
        else:
            for view, covers_from, signature in self.conn.execute(
                    "SELECT view, covers_from, signature FROM cache.coverage").fetchall():
                if view in self.views and signature == self._signature(self.views[view]):
                    self._coverage[view] = covers_from
                else:
                    self._drop(view)
            if int(top[0] or 0) > last_id and self._coverage:  # type: ignore[call-overload]
                touched = [r[0] for r in self.conn.execute(
                    f"SELECT DISTINCT {_HOUR} AS h FROM main.request_log "
                    "WHERE id > ? AND h IS NOT NULL ORDER BY h", (last_id,))]
                for name, covers_from in self._coverage.items():
                    hours = [h for h in touched if _day(h) >= covers_from]
                    self._recompute(self.views[name], _ranges(hours))
                if TOTALS in self._coverage:  # late rows older than the cache: counted apart
                    older = self._one(f"SELECT COUNT(*) FROM main.request_log WHERE id > ? AND "
                                      f"{_HOUR} > '' AND {_HOUR} < ?", last_id,
                                      self._coverage[TOTALS])
                    self._write_meta({"requests_before": self._before() + older})
        self._write_meta({"version": VERSION, "database_id": database_id, "last_id": top[0] or 0,
                          "last_timestamp": top[1], "last_request_id": top[2]})

    def _write_meta(self, values: dict[str, object]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO cache.meta (key, value) VALUES (?, ?)",
                              list(values.items()))

    def _reset(self) -> None:
        for name in self._tables():
            self.conn.execute(f"DROP TABLE cache.{name}")
        self.conn.execute("DELETE FROM cache.coverage")
        self.conn.execute("DELETE FROM cache.meta")

    def _tables(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT name FROM cache.sqlite_master WHERE type = 'table' AND name LIKE 'v\\_%' "
            "ESCAPE '\\'")]

    def _drop(self, view: str) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS cache.v_{view}")
        self.conn.execute("DELETE FROM cache.coverage WHERE view = ?", (view,))

    def _signature(self, view: View) -> str:
        text = repr((view.columns, raw_sql(view, self.columns, exact=False), view.rollup,
                     sorted(view.params.items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- coverage -------------------------------------------------------------------------------
    def ensure(self, view: View, hour: str) -> None:
        """Make sure the view is kept from the day of `hour` on (compute what is missing)."""
        day = _day(hour)
        covered = self._coverage.get(view.name)
        if covered is not None and covered <= day:
            return
        if covered is None:
            self._drop(view.name)
            self._create(view)
            until = max(day, self._last_day())
        else:
            until = covered
        ranges, start = [], day
        while start < until:
            end = _next_day(start)
            ranges.append((f"{start} 00:00:00", f"{end} 00:00:00"))
            start = end
        self._recompute(view, ranges, whole_days=True)
        if view.name == TOTALS:
            if covered is None:
                before = self._one("SELECT ifnull(SUM(requests), 0) FROM main.rollup_hourly "
                                   "WHERE hour > '' AND hour < ?", day)
            else:
                before = self._before() - self._cached_requests(day, covered)
            self._write_meta({"requests_before": before})
        self.conn.execute("INSERT OR REPLACE INTO cache.coverage (view, covers_from, signature) "
                          "VALUES (?, ?, ?)", (view.name, day, self._signature(view)))
        self._coverage[view.name] = day

    # -- all-time request count (the footer's), without summing every rollup each build ------
    def requests_until(self, hour: str) -> int:
        """Requests in every hour before `hour` ('YYYY-MM-DD HH:00:00'), as the rollups count
        them: the cached days and hours, plus `requests_before`, the rollups' count before the
        first cached day (kept up to date as the cache moves, so no build sums all history)."""
        self.ensure(self.views[TOTALS], hour)
        day = _day(hour)
        cached = self._one(f"SELECT ifnull(SUM(requests), 0) FROM cache.v_{TOTALS} "
                           "WHERE (grain = 'd' AND slot < ?) OR (grain = 'h' AND slot >= ? "
                           "AND slot < ?)", day, day, hour)
        return self._before() + cached

    def _one(self, sql: str, *params: object) -> int:
        return int(self.conn.execute(sql, params).fetchone()[0] or 0)

    def _before(self) -> int:
        return int(self._meta().get("requests_before") or 0)  # type: ignore[call-overload]

    def _cached_requests(self, first: str, until: str) -> int:
        return self._one(f"SELECT ifnull(SUM(requests), 0) FROM cache.v_{TOTALS} "
                         "WHERE grain = 'd' AND slot >= ? AND slot < ?", first, until)

    def _last_day(self) -> str:
        """The day after the newest row's (rows in the future of the build are kept too)."""
        last = self.conn.execute("SELECT MAX(timestamp) FROM main.request_log "
                                 "WHERE timestamp <= '9999-12-31 23:59:59.999'").fetchone()[0]
        try:
            return _next_day(str(last)[:10])
        except ValueError:
            return ""

    def covers(self, view: View) -> str | None:
        return self._coverage.get(view.name)

    def _create(self, view: View) -> None:
        columns = ", ".join(view.columns)
        self.conn.execute(f"CREATE TABLE cache.v_{view.name} (grain TEXT NOT NULL, "
                          f"slot TEXT NOT NULL, {columns})")
        self.conn.execute(f"CREATE INDEX cache.v_{view.name}_slot ON v_{view.name} (grain, slot)")

    def _recompute(self, view: View, ranges: list[tuple[str, str]], whole_days: bool = False) -> None:
        """Recompute the hours of `ranges` (each within one day), then their days' totals."""
        if not ranges:
            return
        table = f"cache.v_{view.name}"
        columns = ", ".join(view.columns)
        if view.rollup is not None:
            if whole_days:  # the rollups are small: one statement for the whole span
                ranges = [(ranges[0][0], ranges[-1][1])]
            insert = (f"INSERT INTO {table} (grain, slot, {columns}) "
                      f"SELECT 'h', hour, {columns} FROM ({view.rollup})")
            for start, end in ranges:
                self._clear(table, start, end)
                self.conn.execute(insert, {"start": start, "end": end, **view.params})
        else:  # raw rows, an hour per statement: a small GROUP BY, no per-row strftime
            source = raw_sql(view, self.columns, exact=False, hour=":hour")
            insert = (f"INSERT INTO {table} (grain, slot, {columns}) SELECT 'h', hour, {columns} "
                      f"FROM ({source})")
            for start, end in ranges:
                self._clear(table, start, end)
                hour = start
                while hour < end:
                    after = _next_hour(hour)
                    self.conn.execute(insert, {"hour": hour, "start": hour, "end": after,
                                               **view.params})
                    hour = after
        combine = ", ".join(f"{_AGG[how]}({m})" for m, how in view.measures)
        dims = ", ".join(view.dims)
        for first, last in _day_spans(ranges):
            self.conn.execute(f"DELETE FROM {table} WHERE grain = 'd' AND slot >= ? AND slot < ?",
                              (first, _next_day(last)))
            self.conn.execute(
                f"INSERT INTO {table} (grain, slot, {columns}) "
                f"SELECT 'd', substr(slot, 1, 10) AS day, {dims}, {combine} FROM {table} "
                f"WHERE grain = 'h' AND slot >= ? AND slot < ? GROUP BY day, {dims}",
                (first, _next_day(last)))

    def _clear(self, table: str, start: str, end: str) -> None:
        self.conn.execute(f"DELETE FROM {table} WHERE grain = 'h' AND slot >= ? AND slot < ?",
                          (start, end))

    def prune(self, keep_from: str) -> None:
        """Drop days before `keep_from` ('YYYY-MM-DD'): the cache stays the size of its windows."""
        for name, covers_from in list(self._coverage.items()):
            if covers_from < keep_from:
                if name == TOTALS:
                    dropped = self._cached_requests(covers_from, keep_from)
                    self._write_meta({"requests_before": self._before() + dropped})
                self.conn.execute(f"DELETE FROM cache.v_{name} WHERE slot < ?", (keep_from,))
                self.conn.execute("UPDATE cache.coverage SET covers_from = ? WHERE view = ?",
                                  (keep_from, name))
                self._coverage[name] = keep_from

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")


_HOUR = "strftime('%Y-%m-%d %H:00:00', timestamp)"
_AGG = {"sum": "SUM", MIN: "MIN", MAX: "MAX"}


def _day_spans(ranges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The days the hour ranges touch, as (first, last) runs of consecutive days."""
    spans: list[tuple[str, str]] = []
    for start, end in ranges:
        first, last = _day(start), _day(_last_hour(end))
        if spans and _next_day(spans[-1][1]) >= first:
            spans[-1] = (spans[-1][0], max(spans[-1][1], last))
        else:
            spans.append((first, last))
    return spans


def _last_hour(end: str) -> str:
    """The hour before an exclusive end label."""
    moment = datetime.strptime(end, "%Y-%m-%d %H:%M:%S") - timedelta(hours=1)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _locked(path: Path) -> bool:
    """Whether another connection holds the file (then it is not ours to delete)."""
    try:
        probe = sqlite3.connect(path, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        return "locked" in str(exc)
