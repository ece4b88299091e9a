"""How fast models stream, and what the gateway itself adds to every request.

Streaming speed, per successful stream with a first token and more than one output token:

    tokens/s = completion_tokens / (latency - time_to_first_token)   first token to last byte
    time per output token = (latency - time_to_first_token) / (completion_tokens - 1)
                                                                     the gap between tokens

For a speed the bad tail is the slow one, so its "p95" is the speed 95 % of streams reach or
beat (the 5th percentile in ascending order); times keep the usual p95. Nearest rank throughout.

Gateway overhead = latency - upstream_latency: the request's time in the gateway outside the
upstream call (auth, budgets, routing, logging, relaying), over requests that reached an
upstream, the same population as the report's latency percentiles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import views
from ..aggregates import Bins, value_at
from . import series
from .robust import rank

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

_STREAMS = """
    SELECT {group},
           completion_tokens / (latency - time_to_first_token) AS tps,
           time_to_first_token AS ttft,
           (latency - time_to_first_token) / (completion_tokens - 1) AS tpot
    FROM request_log
    WHERE timestamp >= :start AND timestamp < :end
      AND stream = 1 AND status_code < 400 AND time_to_first_token IS NOT NULL
      AND completion_tokens > 1 AND latency > time_to_first_token
"""

STREAM_SPEED = """
WITH streams AS (""" + _STREAMS.format(group="model") + """), ranked AS (
    SELECT model, tps, ttft, tpot,
           ROW_NUMBER() OVER (PARTITION BY model ORDER BY tps) AS r_tps,
           ROW_NUMBER() OVER (PARTITION BY model ORDER BY ttft) AS r_ttft,
           ROW_NUMBER() OVER (PARTITION BY model ORDER BY tpot) AS r_tpot,
           COUNT(*) OVER (PARTITION BY model) AS n
    FROM streams
)
SELECT model, n AS streams,
       ROUND(MAX(CASE WHEN r_tps = (50 * n + 99) / 100 THEN tps END), 2) AS tps_p50,
       ROUND(MAX(CASE WHEN r_tps = (5 * n + 99) / 100 THEN tps END), 2) AS tps_p95,
       ROUND(MAX(CASE WHEN r_ttft = (50 * n + 99) / 100 THEN ttft END), 4) AS ttft_p50,
       ROUND(MAX(CASE WHEN r_ttft = (95 * n + 99) / 100 THEN ttft END), 4) AS ttft_p95,
       ROUND(MAX(CASE WHEN r_tpot = (50 * n + 99) / 100 THEN tpot END), 6) AS tpot_p50,
       ROUND(MAX(CASE WHEN r_tpot = (95 * n + 99) / 100 THEN tpot END), 6) AS tpot_p95
FROM ranked
GROUP BY model
ORDER BY model
"""

#: By day: one sort (tokens/s) per day and model; the 7-day table above has the rest.
DAILY_STREAM_SPEED = """
WITH streams AS (""" + _STREAMS.format(group="DATE(timestamp) AS date, model") + """), ranked AS (
    SELECT date, model, tps,
           ROW_NUMBER() OVER (PARTITION BY date, model ORDER BY tps) AS r_tps,
           COUNT(*) OVER (PARTITION BY date, model) AS n
    FROM streams
)
SELECT date, model, n AS streams,
       ROUND(MAX(CASE WHEN r_tps = (50 * n + 99) / 100 THEN tps END), 2) AS tps_p50,
       ROUND(MAX(CASE WHEN r_tps = (5 * n + 99) / 100 THEN tps END), 2) AS tps_p95
FROM ranked
GROUP BY date, model
ORDER BY date, model
"""

#: One day's overhead at one rank, counted from the top (a bounded sort of that day only,
#: see series.LATENCY_FROM_TOP; the day's count comes from the shared scan).
OVERHEAD_FROM_TOP = """
SELECT latency - upstream_latency AS overhead FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND upstream_latency IS NOT NULL
ORDER BY overhead DESC LIMIT 1 OFFSET :offset
"""

OVERHEAD_DAYS = 14


def gateway_overhead_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Per day of the last 14: overhead p50 and p99 beside the requests' own p95 latency."""
    rows = []
    days = series.daily(reader, OVERHEAD_DAYS)[-OVERHEAD_DAYS:]
    histograms: dict[tuple[object, ...], Bins] = {}
    if reader.rollups:  # the report cache's histogram of gateway time, by day
        histograms = reader.aggregates.histograms(views.OVERHEAD, days[0].start, days[-1].end, "day")
    for day in days:
        row: dict[str, object] = {"date": day.label, "requests": day.reached,
                                  "overhead_p50": None, "overhead_p99": None,
                                  "latency_p95": day.p95_latency}
        for p in (50, 99):
            if reader.rollups:
                row[f"overhead_p{p}"] = value_at(histograms.get((day.label,), []), p, 6)
            elif day.reached:
                found = reader.query(OVERHEAD_FROM_TOP, {
                    "start": reader.stamp(day.start), "end": reader.stamp(day.end),
                    "offset": day.reached - rank(p, day.reached)})
                row[f"overhead_p{p}"] = round(float(found[0]["overhead"]), 6) if found else None
        rows.append(row)
    return rows


def overhead_summary(rows: list[dict[str, object]]) -> str:
    """One sentence for the Performance page: the gateway's share at a glance."""
    days = [r for r in rows if isinstance(r["overhead_p50"], float) and r["latency_p95"]]
    if not days:
        return ""
    worst = max(days, key=lambda r: (float(r["overhead_p99"] or 0), str(r["date"])))  # type: ignore[arg-type]
    p50s = sorted(float(r["overhead_p50"]) for r in days)  # type: ignore[arg-type]
    p95s = sorted(float(r["latency_p95"]) for r in days)  # type: ignore[arg-type]
    middle = len(days) // 2
    return (f"On a typical day the gateway added {p50s[middle] * 1000:.1f} ms to a request "
            f"(median), against a p95 latency of {p95s[middle]:.2f} s; its worst day's p99 "
            f"was {float(worst['overhead_p99'] or 0) * 1000:.1f} ms ({worst['date']}).")  # type: ignore[arg-type]
