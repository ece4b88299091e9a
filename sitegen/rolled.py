"""The catalogue's windowed tables computed from sitegen/aggregates.py on a log with rollups.

Each function returns the rows its table's SQL (sitegen/queries.py) returns over the raw rows,
same columns, order and rounding; counts and sums are equal (sums of costs up to floating
point), percentiles within one histogram bucket. The SQL stays the table's definition: it is
what the Datasette links run, and what a log without rollups is read with.

Exact times (an error type's last occurrence, an unpriced model's first and last request) come
from the raw rows of the one hour the aggregates point at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from . import views as v
from .aggregates import Bins, merge_bins, value_at

if TYPE_CHECKING:
    from .catalogue import TableDef
    from .data import Reader

Rows = list[dict[str, object]]

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


def moment(stamp: str) -> datetime:
    """A bound as Window.bounds writes it, back to a datetime."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def _window(bounds: dict[str, str]) -> tuple[datetime, datetime]:
    return moment(bounds["start"]), moment(bounds["end"])


def _usd(value: object) -> float:
    return round(float(value or 0.0), 6)  # type: ignore[arg-type]


def _int(value: object) -> int:
    return int(value or 0)  # type: ignore[call-overload]


def group(rows: Iterable[dict[str, object]], keys: tuple[str, ...],
          measures: tuple[str, ...]) -> dict[tuple[object, ...], dict[str, object]]:
    """Sum `measures` of rows by `keys` (a GROUP BY over already aggregated rows)."""
    out: dict[tuple[object, ...], dict[str, object]] = {}
    for r in rows:
        key = tuple(r[k] for k in keys)
        into = out.setdefault(key, {**{k: r[k] for k in keys}, **{m: 0 for m in measures}})
        for m in measures:
            into[m] += r[m] or 0  # type: ignore[operator]
    return out


def _null_first(value: object) -> tuple[int, object]:
    return (0, "") if value is None else (1, value)


def _limit(rows: Rows, sort: Callable[[dict[str, object]], object], limit: int | None = None) -> Rows:
    rows.sort(key=sort)  # type: ignore[arg-type]
    return rows if limit is None else rows[:limit]


def _rate(errors: object, requests: object) -> float | None:
    return round(100.0 * _int(errors) / _int(requests), 2) if _int(requests) else None


# -- overview --------------------------------------------------------------------------------

def todays_stats(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = _window(bounds)
    t = group(reader.aggregates.counters(v.MODEL, start, end), (),
              ("requests", "total_tokens", "cost", "errors")).get((), {})
    last = group(reader.aggregates.counters(v.MODEL, end - timedelta(hours=1), end), (),
                 ("errors",)).get((), {})
    return [{"requests": _int(t.get("requests")), "tokens": _int(t.get("total_tokens")),
             "cost": _usd(t.get("cost")), "errors": _int(t.get("errors")),
             "errors_last_hour": _int(last.get("errors"))}]


def _by_model(reader: Reader, bounds: dict[str, str]) -> list[dict[str, object]]:
    return reader.aggregates.counters(v.MODEL, *_window(bounds))


def todays_top_models(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "cost": _usd(r["cost"])}
            for r in _by_model(reader, bounds)]
    return _limit(rows, lambda r: (-_int(r["requests"]), r["model"]), 5)


def top_models(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "tokens": r["total_tokens"],
             "cost": _usd(r["cost"]), "error_rate": _rate(r["errors"], r["requests"])}
            for r in _by_model(reader, bounds)]
    return _limit(rows, lambda r: (-_int(r["requests"]), r["model"]), 5)


# -- cost ------------------------------------------------------------------------------------

def _days(start: datetime, end: datetime) -> list[str]:
    """DATE(:start) .. DATE(:end), as DAILY_COST_TREND's calendar."""
    first: date = start.date()
    return [(first + timedelta(days=i)).isoformat() for i in range((end.date() - first).days + 1)]


def daily_cost_trend(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = _window(bounds)
    daily = group(reader.aggregates.counters(v.MODEL, start, end, "day"), ("slot",),
                  ("requests", "cost"))
    return [{"date": day, "requests": _int(daily.get((day,), {}).get("requests")),
             "daily_cost": _usd(daily.get((day,), {}).get("cost"))} for day in _days(start, end)]


def daily_cost_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = reader.aggregates.counters(v.MODEL, *_window(bounds), "day")
    return [{"date": r["slot"], "model": r["model"], "requests": r["requests"],
             "cost": _usd(r["cost"])} for r in rows]


def cost_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "prompt_tokens": r["prompt_tokens"],
             "completion_tokens": r["completion_tokens"], "total_cost": _usd(r["cost"]),
             "avg_cost": round(float(r["cost"]) / _int(r["requests"]), 8)}  # type: ignore[arg-type]
            for r in _by_model(reader, bounds)]
    return _limit(rows, lambda r: (-float(r["total_cost"]), r["model"]))  # type: ignore[arg-type]


def _who(reader: Reader, bounds: dict[str, str], keys: tuple[str, ...]) -> Rows:
    rows = reader.aggregates.counters(v.WHO, *_window(bounds))
    return list(group(rows, keys, ("requests", "total_tokens", "cost")).values())


def _costliest(rows: Rows, key: str, limit: int | None) -> Rows:
    return _limit(rows, lambda r: (-float(r["total_cost"]), _null_first(r[key])), limit)  # type: ignore[arg-type]


def top_users_by_cost(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"user_id": r["user_id"], "requests": r["requests"], "tokens": r["total_tokens"],
             "total_cost": _usd(r["cost"])} for r in _who(reader, bounds, ("user_id",))]
    return _costliest(rows, "user_id", 25)


def cost_by_key(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"key_alias": r["key_alias"], "requests": r["requests"], "tokens": r["total_tokens"],
             "total_cost": _usd(r["cost"])} for r in _who(reader, bounds, ("key_alias",))]
    return _costliest(rows, "key_alias", 25)


def _distinct(rows: Rows, key: str, counted: str) -> dict[object, int]:
    """COUNT(DISTINCT counted) per key (NULLs not counted)."""
    seen: dict[object, set[object]] = defaultdict(set)
    for r in rows:
        if r[counted] is not None and _int(r["requests"]):
            seen[r[key]].add(r[counted])
    return {k: len(s) for k, s in seen.items()}


def cost_by_team(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    pairs = _who(reader, bounds, ("team_id", "key_hash"))
    keys = _distinct(pairs, "team_id", "key_hash")
    rows = [{"team_id": r["team_id"], "requests": r["requests"], "keys": keys.get(r["team_id"], 0),
             "tokens": r["total_tokens"], "total_cost": _usd(r["cost"])}
            for r in group(pairs, ("team_id",), ("requests", "total_tokens", "cost")).values()]
    return _costliest(rows, "team_id", 25)


# -- usage -----------------------------------------------------------------------------------

def usage_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "prompt_tokens": r["prompt_tokens"],
             "completion_tokens": r["completion_tokens"], "total_tokens": r["total_tokens"],
             "total_cost": _usd(r["cost"])} for r in _by_model(reader, bounds)]
    return _limit(rows, lambda r: (-float(r["total_cost"]), r["model"]))  # type: ignore[arg-type]


def usage_by_user(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"user_id": r["user_id"], "requests": r["requests"], "total_tokens": r["total_tokens"],
             "total_cost": _usd(r["cost"])} for r in _who(reader, bounds, ("user_id",))]
    return _costliest(rows, "user_id", None)


def usage_by_key(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    pairs = _who(reader, bounds, ("key_alias", "user_id"))
    users = _distinct(pairs, "key_alias", "user_id")
    rows = [{"key_alias": r["key_alias"], "requests": r["requests"],
             "users": users.get(r["key_alias"], 0), "total_tokens": r["total_tokens"],
             "total_cost": _usd(r["cost"])}
            for r in group(pairs, ("key_alias",), ("requests", "total_tokens", "cost")).values()]
    return _limit(rows, lambda r: (-_int(r["requests"]), _null_first(r["key_alias"])))


def daily_tokens_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = reader.aggregates.counters(v.MODEL, *_window(bounds), "day")
    return [{"date": r["slot"], "model": r["model"], "prompt_tokens": r["prompt_tokens"],
             "completion_tokens": r["completion_tokens"], "total_tokens": r["total_tokens"]}
            for r in rows]


def token_efficiency(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    out = []
    for r in _by_model(reader, bounds):
        n = _int(r["requests"])
        prompt, completion = _int(r["prompt_tokens"]), _int(r["completion_tokens"])
        out.append({"model": r["model"], "avg_input": round(prompt / n, 1),
                    "avg_output": round(completion / n, 1),
                    "avg_total": round(_int(r["total_tokens"]) / n, 1),
                    "output_per_input": round(completion / max(prompt, 1), 3)})
    return out  # by model already


# -- performance -----------------------------------------------------------------------------

def latency_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"],
             "avg_latency": round(float(r["latency_sum"]) / _int(r["requests"]), 4),  # type: ignore[arg-type]
             "min_latency": round(float(r["latency_min"]), 4),  # type: ignore[arg-type]
             "max_latency": round(float(r["latency_max"]), 4)}  # type: ignore[arg-type]
            for r in _by_model(reader, bounds)]
    return _limit(rows, lambda r: (r["avg_latency"], r["model"]))


def _percentile_row(bins: Bins, **row: object) -> dict[str, object]:
    return {**row, "requests": sum(n for _, n, _ in bins), "p50": value_at(bins, 50),
            "p95": value_at(bins, 95), "p99": value_at(bins, 99)}


def latency_percentiles(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    found = reader.aggregates.histograms(v.LATENCY, *_window(bounds))
    return [_percentile_row(bins, model=model) for (_, model), bins in sorted(found.items())]


def daily_latency_percentiles(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    found = reader.aggregates.histograms(v.LATENCY, *_window(bounds), "day")
    return [_percentile_row(bins, date=day, model=model)
            for (day, model), bins in sorted(found.items())]


def ttft_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = _window(bounds)
    by_model: dict[object, Bins] = {}
    for (_, model, _), bins in reader.aggregates.histograms(v.TTFT, start, end).items():
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
    for (_, model), m in sorted(_speed(reader.aggregates.histograms(v.SPEED, *_window(bounds))).items()):
        tps, ttft, tpot = m.get("tps", []), m.get("ttft", []), m.get("tpot", [])
        rows.append({"model": model, "streams": sum(n for _, n, _ in tps),
                     "tps_p50": value_at(tps, 50, 2), "tps_p95": value_at(tps, 5, 2),
                     "ttft_p50": value_at(ttft, 50), "ttft_p95": value_at(ttft, 95),
                     "tpot_p50": value_at(tpot, 50, 6), "tpot_p95": value_at(tpot, 95, 6)})
    return rows


def daily_stream_speed(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    found = reader.aggregates.histograms(v.SPEED, *_window(bounds), "day", {"metric": "tps"})
    rows = []
    for (day, model), m in sorted(_speed(found).items()):
        tps = m.get("tps", [])
        rows.append({"date": day, "model": model, "streams": sum(n for _, n, _ in tps),
                     "tps_p50": value_at(tps, 50, 2), "tps_p95": value_at(tps, 5, 2)})
    return rows


def hourly_throughput(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = _window(bounds)
    hourly = group(reader.aggregates.counters(v.MODEL, start, end, "hour"), ("slot",),
                   ("requests", "errors"))
    rows, hour, until = [], start.replace(minute=0, second=0, microsecond=0), reader.stamp(end)
    while True:
        label = hour.strftime("%Y-%m-%d %H:00:00")
        found = hourly.get((label,), {})
        rows.append({"hour": label, "requests_per_hour": _int(found.get("requests")),
                     "errors": _int(found.get("errors"))})
        hour += timedelta(hours=1)
        # As HOURLY_THROUGHPUT's calendar: the next hour's label compared, as text, with :end.
        if not hour.strftime("%Y-%m-%d %H:%M:%S") < until:
            return rows


def request_volume_by_hour(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = _window(bounds)
    hourly = group(reader.aggregates.counters(v.MODEL, start, end, "hour"), ("slot",),
                   ("requests",))
    by_hour: dict[int, int] = defaultdict(int)
    for (label,), r in hourly.items():
        by_hour[int(str(label)[11:13])] += _int(r["requests"])
    last = (end - timedelta(milliseconds=1)).hour
    return [{"hour": f"{h:02d}", "requests": by_hour.get(h, 0)} for h in range(last + 1)]


# -- errors ----------------------------------------------------------------------------------

def error_rates(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "total_requests": r["requests"], "errors": r["errors"],
             "error_rate": _rate(r["errors"], r["requests"])} for r in _by_model(reader, bounds)]
    return _limit(rows, lambda r: (-float(r["error_rate"] or 0), r["model"]))  # type: ignore[arg-type]


def status_codes_daily(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = reader.aggregates.counters(v.STATUS, *_window(bounds), "day")
    daily = group(rows, ("slot", "status_code"), ("requests",))
    return [{"date": day, "status_code": code, "requests": r["requests"]}
            for (day, code), r in sorted(daily.items())]


def _last_hour(rows: Rows, keys: tuple[str, ...]) -> dict[tuple[object, ...], str]:
    last: dict[tuple[object, ...], str] = {}
    for r in rows:
        key = tuple(r[k] for k in keys)
        if _int(r["requests"]) and str(r["slot"]) > last.get(key, ""):
            last[key] = str(r["slot"])
    return last


def _hour_bounds(reader: Reader, label: str, start: datetime, end: datetime) -> dict[str, str]:
    hour = datetime.strptime(label, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return {"start": reader.stamp(max(hour, start)),
            "end": reader.stamp(min(hour + timedelta(hours=1), end))}


def error_types(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = _window(bounds)
    hourly = [r for r in reader.aggregates.counters(v.STATUS, start, end, "hour")
              if _int(r["status_code"]) >= 400]
    last = _last_hour(hourly, ("error_type", "status_code"))
    rows = []
    for (error_type, status), r in group(hourly, ("error_type", "status_code"), ("requests",)).items():
        found = reader.query(LAST_ERROR_IN_HOUR, {
            **_hour_bounds(reader, last[(error_type, status)], start, end),
            "status": status, "error_type": error_type})
        rows.append({"error_type": error_type, "status_code": status, "requests": r["requests"],
                     "last_seen": found[0]["moment"] if found else None})
    return _limit(rows, lambda r: (-_int(r["requests"]), _null_first(r["error_type"]),
                                   r["status_code"]))


# -- pricing coverage ------------------------------------------------------------------------

def cost_status_summary(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = reader.aggregates.counters(v.PRICING, *_window(bounds))
    out = [{"cost_status": r["cost_status"], "requests": r["requests"], "tokens": r["total_tokens"],
            "estimated_token_requests": r["estimated"], "cost": _usd(r["cost"])}
           for r in group(rows, ("cost_status",), ("requests", "total_tokens", "estimated", "cost")).values()]
    return _limit(out, lambda r: (-_int(r["requests"]), _null_first(r["cost_status"])))


def unpriced_models(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = _window(bounds)
    hourly = [r for r in reader.aggregates.counters(v.PRICING, start, end, "hour",
                                                    {"cost_status": "unpriced"})
              if _int(r["requests"])]
    first: dict[object, str] = {}
    for r in hourly:
        first[r["model"]] = min(first.get(r["model"], str(r["slot"])), str(r["slot"]))
    last = _last_hour(hourly, ("model",))
    rows = []
    for (model,), r in group(hourly, ("model",), ("requests", "total_tokens", "estimated")).items():
        seen = [reader.query(sql, {**_hour_bounds(reader, hour, start, end), "model": model})
                for sql, hour in ((FIRST_IN_HOUR, first[model]), (LAST_IN_HOUR, last[(model,)]))]
        rows.append({"model": model, "requests": r["requests"], "tokens": r["total_tokens"],
                     "estimated_token_requests": r["estimated"],
                     "first_seen": seen[0][0]["moment"], "last_seen": seen[1][0]["moment"]})
    return _limit(rows, lambda r: (-_int(r["requests"]), r["model"]))


def estimated_tokens(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "estimated_tokens": r["total_tokens"],
             "cost_from_estimates": _usd(r["cost"])}
            for r in reader.aggregates.counters(v.ESTIMATED, *_window(bounds))]
    return _limit(rows, lambda r: (-_int(r["requests"]), r["model"]))


def zero_cost_models(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["zero_requests"], "tokens": r["zero_tokens"]}
            for r in reader.aggregates.counters(v.COSTED, *_window(bounds))
            if _int(r["zero_requests"])]
    return _limit(rows, lambda r: (-_int(r["requests"]), r["model"]))


#: Table name -> its rows from the aggregates (tables not named here read their SQL as before).
TABLES: dict[str, Callable[[Reader, TableDef, dict[str, str]], Rows]] = {
    f.__name__: f for f in (
        todays_stats, todays_top_models, top_models, daily_cost_trend, daily_cost_by_model,
        cost_by_model, top_users_by_cost, cost_by_key, cost_by_team, usage_by_model,
        usage_by_user, usage_by_key, daily_tokens_by_model, token_efficiency, latency_by_model,
        latency_percentiles, daily_latency_percentiles, ttft_by_model, stream_speed,
        daily_stream_speed, hourly_throughput, request_volume_by_hour, error_rates,
        status_codes_daily, error_types, cost_status_summary, unpriced_models,
        estimated_tokens, zero_cost_models,
    )
}
