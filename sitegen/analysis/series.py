"""Per-day and per-hour totals of the log, zero-filled, read once per build and shared.

The anomalies judge the last 30 days against the 14 before each, and the month forecast needs
this month and the last; one GROUP BY over the covering index serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .. import views
from ..aggregates import value_at
from .robust import rank

if TYPE_CHECKING:
    from ..data import Reader

#: Enough days for the anomalies (30 judged + 14 of history), the forecast (this month and
#: the last) and the cost decomposition (60 days).
DAYS = 63
#: The days whose p95 latency (and count of requests that reached an upstream) is wanted:
#: the anomalies' 30 judged days and their 14 days of history.
LATENCY_DAYS = 44
#: The last 24 hours, each with the same hour of the 7 days before.
HOURS = 24 * 8
#: Error rates and p95 latencies of smaller buckets are noise; they are not computed.
MIN_REQUESTS = 20

#: One stretch of time within one day and one comparison segment (see `boundaries`), by
#: model: the daily totals, the cost decomposition and the Overview's periods all add these
#: up. One query per stretch (about 70) sorts a day's rows at a time, a third cheaper than one
#: GROUP BY over the 63 days. `cost > 0` counts the requests that cost something.
#: {reached} is `upstream_latency IS NOT NULL` (`1` on a log without that column) on the days
#: whose p95 latency is wanted, else NULL: it reads the table row, where everything else comes
#: from the covering index.
STRETCH_BY_MODEL = """
SELECT model,
       COUNT(*) AS requests,
       SUM(cost > 0) AS costed,
       SUM(cost) AS cost,
       SUM(total_tokens) AS tokens,
       SUM(status_code >= 400) AS errors,
       SUM({reached}) AS reached
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY model
"""

HOURLY_TOTALS = """
SELECT strftime('%Y-%m-%d %H:00:00', timestamp) AS bucket,
       COUNT(*) AS requests,
       SUM(status_code >= 400) AS errors,
       SUM(cost) AS cost,
       SUM({reached}) AS reached
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY bucket
"""

#: One bucket's latency at one rank, counted from the top: ORDER BY ... DESC LIMIT 1 OFFSET
#: n - rank keeps only the top 5 % in SQLite's bounded sorter, several times cheaper than
#: ranking every row of the window with ROW_NUMBER() and COUNT() OVER.
LATENCY_FROM_TOP = """
SELECT latency FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND {reached}
ORDER BY latency DESC LIMIT 1 OFFSET :offset
"""


def reached(reader: Reader) -> str:
    """The report's latency rule: requests that reached an upstream (all on a guide-only log)."""
    return "upstream_latency IS NOT NULL" if "upstream_latency" in reader.columns else "1"


@dataclass
class Bucket:
    label: str  # 'YYYY-MM-DD' or 'YYYY-MM-DD HH:00:00'
    start: datetime
    end: datetime  # exclusive; the current bucket ends at the build's clock
    requests: int = 0
    errors: int = 0
    cost: float = 0.0
    reached: int = 0
    p95_latency: float | None = None

    @property
    def error_rate(self) -> float | None:
        if self.requests < MIN_REQUESTS:
            return None
        return round(100.0 * self.errors / self.requests, 2)


def boundaries(now: datetime) -> list[datetime]:
    """b0..b6 in time order: now-60d, now-30d, now-14d, now-7d, yesterday 00:00, now-1d,
    today 00:00. Today is [b6, now), yesterday to the same time [b4, b5), the last 7 days
    [b3, now), the 7 before [b2, b3), the last 30 days [b1, now), the 30 before [b0, b1)."""
    day = timedelta(days=1)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [now - 60 * day, now - 30 * day, now - 14 * day, now - 7 * day,
            midnight - day, now - day, midnight]


@dataclass(frozen=True)
class Segment:
    requests: int
    costed: int
    cost: float
    tokens: int
    errors: int
    reached: int
    #: Cost of the costed requests, when it was counted apart (the report cache does: the
    #: rollups' cost may include pruned hours the cache counted no costed request for).
    costed_cost: float | None = None


def _empty(first: datetime, step: timedelta, count: int, fmt: str, now: datetime) -> list[Bucket]:
    return [Bucket((first + i * step).strftime(fmt), first + i * step,
                   min(first + (i + 1) * step, now)) for i in range(count)]


def _scan(reader: Reader) -> tuple[list[Bucket], dict[tuple[str, int], Segment]]:
    now = reader.clock.now
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    first = midnight - (DAYS - 1) * day
    buckets = _empty(first, day, DAYS, "%Y-%m-%d", now)
    marks = boundaries(now)
    cuts = sorted({b.start for b in buckets} | {m for m in marks if first < m < now} | {now})
    # Requests that reached an upstream: counted where a p95 needs them (the last LATENCY_DAYS
    # days, and the Overview's six periods, which reach back to b0).
    reached_from = min(midnight - (LATENCY_DAYS - 1) * day, marks[0])
    counted = STRETCH_BY_MODEL.format(reached=reached(reader))
    skipped = STRETCH_BY_MODEL.format(reached="NULL")
    by_label = {b.label: b for b in buckets}
    totals: dict[tuple[str, int], list[float | int]] = {}
    for start, end in zip(cuts, cuts[1:], strict=False):
        segment = max((i for i, m in enumerate(marks) if m <= start), default=-1)
        b = by_label[start.strftime("%Y-%m-%d")]
        sql = counted if start >= reached_from else skipped
        for row in reader.query(sql, {"start": reader.stamp(start), "end": reader.stamp(end)}):
            b.requests += int(row["requests"])
            b.errors += int(row["errors"] or 0)
            b.cost += float(row["cost"] or 0.0)
            b.reached += int(row["reached"] or 0)
            acc = totals.setdefault((str(row["model"]), segment), [0, 0, 0.0, 0, 0, 0])
            acc[0] += int(row["requests"])
            acc[1] += int(row["costed"] or 0)
            acc[2] += float(row["cost"] or 0.0)
            acc[3] += int(row["tokens"] or 0)
            acc[4] += int(row["errors"] or 0)
            acc[5] += int(row["reached"] or 0)
    return buckets, {k: Segment(int(v[0]), int(v[1]), v[2], int(v[3]), int(v[4]), int(v[5]))
                     for k, v in sorted(totals.items())}


def _scan_aggregated(reader: Reader) -> tuple[list[Bucket], dict[tuple[str, int], Segment]]:
    """As _scan, from the report cache (sitegen/aggregates.py): per segment of `boundaries`,
    its days by model; whole days and hours from the cache, the partial hours from the rows."""
    now = reader.clock.now
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight - (DAYS - 1) * timedelta(days=1)
    buckets = _empty(first, timedelta(days=1), DAYS, "%Y-%m-%d", now)
    by_label = {b.label: b for b in buckets}
    marks = boundaries(now)
    cuts = sorted({first, now} | {m for m in marks if first < m < now})
    totals: dict[tuple[str, int], list[float | int]] = {}
    for start, end in zip(cuts, cuts[1:], strict=False):
        segment = max((i for i, m in enumerate(marks) if m <= start), default=-1)
        costed = {(r["slot"], r["model"]): r
                  for r in reader.aggregates.counters(views.COSTED, start, end, "day")}
        for row in reader.aggregates.counters(views.MODEL, start, end, "day"):
            b = by_label[str(row["slot"])]
            b.requests += int(row["requests"])  # type: ignore[call-overload]
            b.errors += int(row["errors"] or 0)  # type: ignore[call-overload]
            b.cost += float(row["cost"] or 0.0)  # type: ignore[arg-type]
            b.reached += int(row["reached"] or 0)  # type: ignore[call-overload]
            c = costed.get((row["slot"], row["model"]), {})
            acc = totals.setdefault((str(row["model"]), segment), [0, 0, 0.0, 0, 0, 0, 0.0])
            acc[0] += int(row["requests"])  # type: ignore[call-overload]
            acc[1] += int(c.get("costed") or 0)  # type: ignore[call-overload]
            acc[2] += float(row["cost"] or 0.0)  # type: ignore[arg-type]
            acc[3] += int(row["total_tokens"] or 0)  # type: ignore[call-overload]
            acc[4] += int(row["errors"] or 0)  # type: ignore[call-overload]
            acc[5] += int(row["reached"] or 0)  # type: ignore[call-overload]
            acc[6] += float(c.get("costed_cost") or 0.0)  # type: ignore[arg-type]
    return buckets, {k: Segment(int(v[0]), int(v[1]), v[2], int(v[3]), int(v[4]), int(v[5]), v[6])
                     for k, v in sorted(totals.items())}


def _p95_aggregated(reader: Reader, buckets: list[Bucket], slot: str) -> None:
    """p95 latency of each bucket from the latency histogram (all models together)."""
    wanted = [b for b in buckets if b.requests >= MIN_REQUESTS and b.reached]
    if not wanted:
        return
    found = reader.aggregates.histograms(views.LATENCY_ALL, wanted[0].start, wanted[-1].end, slot)
    for b in wanted:
        b.p95_latency = value_at(found.get((b.label,), []), 95)


def _p95(reader: Reader, buckets: list[Bucket]) -> None:
    if reader.rollups:
        if buckets:
            _p95_aggregated(reader, buckets, "hour" if " " in buckets[0].label else "day")
        return
    from_top = LATENCY_FROM_TOP.format(reached=reached(reader))
    for b in buckets:
        if b.requests >= MIN_REQUESTS and b.reached:
            found = reader.query(from_top, {"start": reader.stamp(b.start),
                                            "end": reader.stamp(b.end),
                                            "offset": b.reached - rank(95, b.reached)})
            b.p95_latency = round(float(found[0]["latency"]), 4) if found else None


def _scanned(reader: Reader) -> tuple[list[Bucket], dict[tuple[str, int], Segment]]:
    scan = _scan_aggregated if reader.rollups else _scan
    return reader.memo("day_model_segment", lambda: scan(reader))  # type: ignore[no-any-return]


def daily(reader: Reader, latency_days: int) -> list[Bucket]:
    """The last DAYS calendar days (UTC), today last; p95 latency for the last `latency_days`
    (at most LATENCY_DAYS: older days have no count of requests that reached an upstream)."""
    buckets = _scanned(reader)[0]
    wanted = buckets[-min(latency_days, LATENCY_DAYS):] if latency_days else []
    _p95(reader, [b for b in wanted if b.p95_latency is None])
    return buckets


def segments(reader: Reader) -> dict[tuple[str, int], Segment]:
    """(model, segment of `boundaries`) -> requests, costed requests and cost; segment -1 is
    older than 60 days."""
    return _scanned(reader)[1]


def hourly(reader: Reader) -> list[Bucket]:
    """The last HOURS clock hours, the current one last, with p95 latency."""
    def run() -> list[Bucket]:
        now = reader.clock.now
        hour = timedelta(hours=1)
        first = now.replace(minute=0, second=0, microsecond=0) - (HOURS - 1) * hour
        buckets = _empty(first, hour, HOURS, "%Y-%m-%d %H:00:00", now)
        by_label = {b.label: b for b in buckets}
        if reader.rollups:
            found = reader.aggregates.counters(views.MODEL, first, now, "hour")
            for row in found:
                b = by_label[str(row["slot"])]
                b.requests += int(row["requests"])  # type: ignore[call-overload]
                b.errors += int(row["errors"] or 0)  # type: ignore[call-overload]
                b.cost += float(row["cost"] or 0.0)  # type: ignore[arg-type]
                b.reached += int(row["reached"] or 0)  # type: ignore[call-overload]
        else:
            sql = HOURLY_TOTALS.format(reached=reached(reader))
            for row in reader.query(sql, {"start": reader.stamp(first), "end": reader.stamp(now)}):
                b = by_label[str(row["bucket"])]
                b.requests, b.errors = int(row["requests"]), int(row["errors"] or 0)
                b.cost, b.reached = float(row["cost"] or 0.0), int(row["reached"] or 0)
        _p95(reader, buckets)
        return buckets

    return reader.memo("hourly", run)  # type: ignore[no-any-return]


def window_totals(reader: Reader, start: datetime, end: datetime) -> dict[str, object] | None:
    """Requests, tokens, cost, errors and requests that reached an upstream (latency
    percentiles' count) of [start, end) when it is a union of the comparison segments (the
    Overview's six periods), from the shared scan; else None."""
    marks = boundaries(reader.clock.now) + [reader.clock.now]
    if start not in marks or end not in marks or start >= end:
        return None
    wanted = {i for i in range(7) if start <= marks[i] and marks[i + 1] <= end}
    totals: dict[str, object] = {"requests": 0, "tokens": 0, "cost": 0.0, "errors": 0, "reached": 0}
    for (_, segment), seg in segments(reader).items():
        if segment in wanted:
            totals["requests"] += seg.requests  # type: ignore[operator]
            totals["tokens"] += seg.tokens  # type: ignore[operator]
            totals["cost"] += seg.cost  # type: ignore[operator]
            totals["errors"] += seg.errors  # type: ignore[operator]
            totals["reached"] += seg.reached  # type: ignore[operator]
    totals["cost"] = round(float(totals["cost"]), 6)  # type: ignore[arg-type]
    return totals
