"""Days and hours whose cost, error rate or p95 latency is far above their own recent history.

The rule (stated on the Overview): a day is judged against the 14 days before it, an hour against
the same hour of the 7 days before it (traffic and cost follow the clock). With m the median and
MAD the median absolute deviation of that history, the value is an anomaly when it is above

    m + K * max(MAD, floor)        K = 5; floor = 5 % of m for cost and p95 latency,
                                   1 percentage point for the error rate

Median and MAD ignore the very spikes they look for (a mean and standard deviation are dragged
up by one). Only the high side is flagged: a quiet Sunday or an error-free day is no incident.
Error rates and p95 latencies are judged only for buckets with at least 20 requests (hours:
every metric), and a bucket needs 7 days (hours: 4) of history with data; cost history starts at
the log's first day.
p95 latency follows the report's one rule: nearest rank over requests that reached an upstream
(upstream_latency recorded; on a guide-only database, every request).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import series
from .robust import Band, band
from .series import MIN_REQUESTS, Bucket

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

K = 5.0
DAY_HISTORY, DAY_MIN_HISTORY, DAYS_JUDGED = 14, 7, 30
HOUR_HISTORY, HOUR_MIN_HISTORY, HOURS_JUDGED = 7, 4, 24


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # a cell kind: usd | pct | sec
    floor_ratio: float
    floor_abs: float


METRICS = (
    Metric("cost", "Cost", "usd", 0.05, 1e-6),
    Metric("error_rate", "Error rate", "pct", 0.0, 1.0),
    Metric("p95_latency", "p95 latency", "sec", 0.05, 1e-3),
)


def _value(bucket: Bucket, metric: Metric, hourly: bool) -> float | None:
    if metric.key == "cost":
        # An hour of a few requests swings by itself: judged from MIN_REQUESTS up, as days.
        return None if hourly and bucket.requests < MIN_REQUESTS else round(bucket.cost, 6)
    if metric.key == "error_rate":
        return bucket.error_rate
    return bucket.p95_latency if bucket.requests >= MIN_REQUESTS else None


@dataclass(frozen=True)
class Judged:
    bucket: Bucket
    metric: Metric
    value: float
    band: Band

    @property
    def anomalous(self) -> bool:
        return self.value > self.band.upper


def _judge(buckets: list[Bucket], history_of: Callable[[int], range], judged: int,
           min_history: int, hourly: bool) -> list[Judged]:
    """Every metric of the last `judged` buckets, against the history `history_of(i)` gives."""
    first_active = next((i for i, b in enumerate(buckets) if b.requests), len(buckets))
    out = []
    for i in range(len(buckets) - judged, len(buckets)):
        for metric in METRICS:
            value = _value(buckets[i], metric, hourly)
            if value is None:
                continue
            history = [_value(buckets[j], metric, hourly) for j in history_of(i) if j >= first_active]
            values = [v for v in history if v is not None]
            if len(values) < min_history:
                continue
            out.append(Judged(buckets[i], metric,
                              value, band(values, K, metric.floor_ratio, metric.floor_abs)))
    return out


@dataclass(frozen=True)
class Result:
    days: list[Judged]
    hours: list[Judged]


def analyse(reader: Reader) -> Result:
    """Judge the last 30 days and the last 24 hours (memoised: several tables read it)."""
    def run() -> Result:
        days = series.daily(reader, DAYS_JUDGED + DAY_HISTORY)
        hours = series.hourly(reader)
        return Result(
            _judge(days, lambda i: range(max(0, i - DAY_HISTORY), i), DAYS_JUDGED, DAY_MIN_HISTORY,
                   False),
            _judge(hours, lambda i: range(i - 24 * HOUR_HISTORY, i, 24), HOURS_JUDGED,
                   HOUR_MIN_HISTORY, True),
        )

    return reader.memo("anomalies", run)  # type: ignore[no-any-return]


def _anomaly_row(j: Judged, grain: str) -> dict[str, object]:
    return {
        "when": j.bucket.label, "grain": grain, "metric": j.metric.label, "unit": j.metric.unit,
        "value": j.value, "median": round(j.band.median, 6), "threshold": round(j.band.upper, 6),
        "score": round(j.band.score(j.value), 1), "requests": j.bucket.requests,
    }


def anomaly_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Every anomaly of the last 30 days and 24 hours, newest first."""
    result = analyse(reader)
    rows = [_anomaly_row(j, "hour") for j in result.hours if j.anomalous]
    rows += [_anomaly_row(j, "day") for j in result.days if j.anomalous]
    rows.sort(key=lambda r: (str(r["when"]), str(r["grain"]) == "hour", str(r["metric"])), reverse=True)
    return rows


def daily_health_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Per judged day and metric: the value, its history's median and the anomaly threshold."""
    return [{
        "date": j.bucket.label, "metric": j.metric.label, "unit": j.metric.unit,
        "value": j.value, "median": round(j.band.median, 6), "threshold": round(j.band.upper, 6),
        "anomaly": int(j.anomalous),
    } for j in analyse(reader).days]


def marks(rows: list[dict[str, object]], metric: str, grain: str) -> list[dict[str, object]]:
    """The anomalies table's rows for one metric and grain, as chart marks."""
    return [r for r in rows if r["metric"] == metric and r["grain"] == grain]
