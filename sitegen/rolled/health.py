"""Performance, Errors and Pricing coverage tables from the aggregates (see
sitegen/rolled/__init__.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

from .. import views as v
from ..aggregates import Bins, merge_bins, value_at
from .base import (
    Rows,
    as_int,
    by_model,
    group,
    hour_bounds,
    last_hour,
    null_first,
    ordered,
    rate,
    usd,
    window,
)

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

FIRST_IN_HOUR = """
SELECT MIN(timestamp) AS moment FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND model = :model AND cost_status = 'unpriced'
"""
LAST_IN_HOUR = """
SELECT MAX(timestamp) AS moment FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND model = :model AND cost_status = 'unpriced'
"""
LAST_ERROR_IN_HOUR = """
SELECT MAX(timestamp) AS moment FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND status_code >= 400
  AND status_code = :status AND error_type IS :error_type
"""


# -- performance -----------------------------------------------------------------------------

def latency_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"],
             "avg_latency": round(float(r["latency_sum"]) / as_int(r["requests"]), 4),  # type: ignore[arg-type]
             "min_latency": round(float(r["latency_min"]), 4),  # type: ignore[arg-type]
             "max_latency": round(float(r["latency_max"]), 4)}  # type: ignore[arg-type]
            for r in by_model(reader, bounds)]
    return ordered(rows, lambda r: (r["avg_latency"], r["model"]))


def _percentile_row(bins: Bins, **row: object) -> dict[str, object]:
    return {**row, "requests": sum(n for _, n, _ in bins), "p50": value_at(bins, 50),
            "p95": value_at(bins, 95), "p99": value_at(bins, 99)}


def latency_percentiles(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    found = reader.aggregates.histograms(v.LATENCY, *window(bounds))
    return [_percentile_row(bins, model=model) for (_, model), bins in sorted(found.items())]


def daily_latency_percentiles(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    found = reader.aggregates.histograms(v.LATENCY, *window(bounds), "day")
    return [_percentile_row(bins, date=day, model=model)
            for (day, model), bins in sorted(found.items())]


def ttft_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = window(bounds)
    by_model: dict[object, Bins] = {}
    for (_, model, _, _), bins in reader.aggregates.histograms(v.TTFT, start, end, only={"ok": 1}).items():
        by_model[model] = merge_bins([by_model.get(model, []), bins])
    sums = {r["model"]: r for r in reader.aggregates.counters(v.MODEL, start, end)}
    rows = []
    for model, bins in sorted(by_model.items()):
        n = sum(c for _, c, _ in bins)
        total = float(sums[model]["ttft_sum"] or 0.0) if model in sums else 0.0  # type: ignore[arg-type]
        rows.append({"model": model, "streams": n, "avg_ttft": round(total / n, 4),
                     "p50_ttft": value_at(bins, 50), "p95_ttft": value_at(bins, 95)})
    return rows


def _speed(found: dict[tuple[object, ...], Bins]) -> dict[tuple[object, ...], dict[str, Bins]]:
    """(slot, model) -> metric -> bins."""
    out: dict[tuple[object, ...], dict[str, Bins]] = defaultdict(dict)
    for (slot, model, metric), bins in found.items():
        out[(slot, model)][str(metric)] = bins
    return out


def stream_speed(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = []
    for (_, model), m in sorted(_speed(reader.aggregates.histograms(v.SPEED, *window(bounds))).items()):
        tps, ttft, tpot = m.get("tps", []), m.get("ttft", []), m.get("tpot", [])
        rows.append({"model": model, "streams": sum(n for _, n, _ in tps),
                     "tps_p50": value_at(tps, 50, 2), "tps_p95": value_at(tps, 5, 2),
                     "ttft_p50": value_at(ttft, 50), "ttft_p95": value_at(ttft, 95),
                     "tpot_p50": value_at(tpot, 50, 6), "tpot_p95": value_at(tpot, 95, 6)})
    return rows


def daily_stream_speed(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    found = reader.aggregates.histograms(v.SPEED, *window(bounds), "day", {"metric": "tps"})
    rows = []
    for (day, model), m in sorted(_speed(found).items()):
        tps = m.get("tps", [])
        rows.append({"date": day, "model": model, "streams": sum(n for _, n, _ in tps),
                     "tps_p50": value_at(tps, 50, 2), "tps_p95": value_at(tps, 5, 2)})
    return rows


def hourly_throughput(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = window(bounds)
    hourly = group(reader.aggregates.counters(v.MODEL, start, end, "hour"), ("slot",),
                   ("requests", "errors"))
    rows, hour, until = [], start.replace(minute=0, second=0, microsecond=0), reader.stamp(end)
    while True:
        label = hour.strftime("%Y-%m-%d %H:00:00")
        found = hourly.get((label,), {})
        rows.append({"hour": label, "requests_per_hour": as_int(found.get("requests")),
                     "errors": as_int(found.get("errors"))})
        hour += timedelta(hours=1)
        # As HOURLY_THROUGHPUT's calendar: the next hour's label compared, as text, with :end.
        if not hour.strftime("%Y-%m-%d %H:%M:%S") < until:
            return rows


def request_volume_by_hour(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = window(bounds)
    hourly = group(reader.aggregates.counters(v.MODEL, start, end, "hour"), ("slot",),
                   ("requests",))
    by_hour: dict[int, int] = defaultdict(int)
    for (label,), r in hourly.items():
        by_hour[int(str(label)[11:13])] += as_int(r["requests"])
    last = (end - timedelta(milliseconds=1)).hour
    return [{"hour": f"{h:02d}", "requests": by_hour.get(h, 0)} for h in range(last + 1)]


# -- errors ----------------------------------------------------------------------------------

def error_rates(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "total_requests": r["requests"], "errors": r["errors"],
             "error_rate": rate(r["errors"], r["requests"])} for r in by_model(reader, bounds)]
    return ordered(rows, lambda r: (-float(r["error_rate"] or 0), r["model"]))  # type: ignore[arg-type]


def status_codes_daily(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = reader.aggregates.counters(v.STATUS, *window(bounds), "day")
    daily = group(rows, ("slot", "status_code"), ("requests",))
    return [{"date": day, "status_code": code, "requests": r["requests"]}
            for (day, code), r in sorted(daily.items())]


def error_types(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = window(bounds)
    hourly = [r for r in reader.aggregates.counters(v.STATUS, start, end, "hour")
              if as_int(r["status_code"]) >= 400]
    last = last_hour(hourly, ("error_type", "status_code"))
    rows = []
    for (error_type, status), r in group(hourly, ("error_type", "status_code"), ("requests",)).items():
        found = reader.query(LAST_ERROR_IN_HOUR, {
            **hour_bounds(reader, last[(error_type, status)], start, end),
            "status": status, "error_type": error_type})
        rows.append({"error_type": error_type, "status_code": status, "requests": r["requests"],
                     "last_seen": found[0]["moment"] if found else None})
    return ordered(rows, lambda r: (-as_int(r["requests"]), null_first(r["error_type"]),
                                   r["status_code"]))


# -- pricing coverage ------------------------------------------------------------------------

def cost_status_summary(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = reader.aggregates.counters(v.PRICING, *window(bounds))
    out = [{"cost_status": r["cost_status"], "requests": r["requests"], "tokens": r["total_tokens"],
            "estimated_token_requests": r["estimated"], "cost": usd(r["cost"])}
           for r in group(rows, ("cost_status",), ("requests", "total_tokens", "estimated", "cost")).values()]
    return ordered(out, lambda r: (-as_int(r["requests"]), null_first(r["cost_status"])))


def unpriced_models(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = window(bounds)
    hourly = [r for r in reader.aggregates.counters(v.PRICING, start, end, "hour",
                                                    {"cost_status": "unpriced"})
              if as_int(r["requests"])]
    first: dict[object, str] = {}
    for r in hourly:
        first[r["model"]] = min(first.get(r["model"], str(r["slot"])), str(r["slot"]))
    last = last_hour(hourly, ("model",))
    rows = []
    for (model,), r in group(hourly, ("model",), ("requests", "total_tokens", "estimated")).items():
        seen = [reader.query(sql, {**hour_bounds(reader, hour, start, end), "model": model})
                for sql, hour in ((FIRST_IN_HOUR, first[model]), (LAST_IN_HOUR, last[(model,)]))]
        rows.append({"model": model, "requests": r["requests"], "tokens": r["total_tokens"],
                     "estimated_token_requests": r["estimated"],
                     "first_seen": seen[0][0]["moment"], "last_seen": seen[1][0]["moment"]})
    return ordered(rows, lambda r: (-as_int(r["requests"]), r["model"]))


def estimated_tokens(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "estimated_tokens": r["total_tokens"],
             "cost_from_estimates": usd(r["cost"])}
            for r in reader.aggregates.counters(v.ESTIMATED, *window(bounds))]
    return ordered(rows, lambda r: (-as_int(r["requests"]), r["model"]))


def zero_cost_models(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["zero_requests"], "tokens": r["zero_tokens"]}
            for r in reader.aggregates.counters(v.COSTED, *window(bounds))
            if as_int(r["zero_requests"])]
    return ordered(rows, lambda r: (-as_int(r["requests"]), r["model"]))


