"""What the report aggregates per UTC hour: narrow "views" of the request log, and their SQL.

A view has a few dimensions (e.g. model; or user, key and team) and additive measures (counts,
sums; min/max where noted). Histogram views add `bucket` to the dimensions and count requests
with the largest value seen per bucket (proxy.logdb.rollups' scale and rule: a percentile read
from them is within one bucket of the exact nearest-rank value, never below it).

Each view has two ways to be computed for the hours [:start, :end):
- `raw`: a GROUP BY over request_log rows (always exact; the only way for what the gateway's
  rollups lack: requests that cost something, estimated-token cost, gateway overhead, streaming
  speed, metadata breakdowns);
- `rollup`: the same numbers from the gateway's hourly rollups (migration 0003), for the views
  the rollups can answer; fast at any size, and they outlive pruned rows.
The report cache (sitegen/cache.py) keeps every view per hour and per day; sitegen/aggregates.py
answers a window from whole days and hours of the cache plus the raw rows of its partial hours.

Raw SQL is a template: {reached} is the report's latency rule (`upstream_latency IS NOT NULL`,
or `1` on a log without that column), {ttft} the time to first token (or NULL), {bucket(x)} the
histogram bucket of a value (rollup_buckets, as the trigger does; the value itself in raw mode,
where percentiles are exact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

HOUR = "strftime('%Y-%m-%d %H:00:00', timestamp)"
WINDOW = "timestamp >= :start AND timestamp < :end"
ROLLUP_WINDOW = "hour >= :start AND hour < :end"

#: How a measure combines across hours and pieces of a window.
SUM, MIN, MAX = "sum", "min", "max"


@dataclass(frozen=True)
class View:
    name: str
    dims: tuple[str, ...]
    measures: tuple[tuple[str, str], ...]  # (name, SUM | MIN | MAX)
    raw: str  # template: SELECT hour, dims..., measures... FROM request_log WHERE {WINDOW} ...
    rollup: str | None = None  # the same from the rollups, for whole hours
    #: request_log columns beyond the guide's the raw SQL needs (raw mode on an older log).
    requires: frozenset[str] = frozenset()
    params: dict[str, object] = field(default_factory=dict)  # extra SQL parameters

    @property
    def histogram(self) -> bool:
        return "bucket" in self.dims

    @property
    def columns(self) -> tuple[str, ...]:
        return self.dims + tuple(m for m, _ in self.measures)


def _bucket(value: str, unit: float = 1.0) -> Callable[[bool], str]:
    """The bucket of a value: rollup_buckets' lookup (the trigger's), or the exact value."""
    scaled = f"({value})" if unit == 1.0 else f"({value}) * {unit!r}"

    def sql(exact: bool) -> str:
        if exact:
            return f"({value})"
        return (f"ifnull((SELECT bucket FROM rollup_buckets WHERE lower <= {scaled} "
                "ORDER BY lower DESC LIMIT 1), 0)")
    return sql


HISTOGRAM = (("requests", SUM), ("max_value", MAX))

MODEL = View(
    "model", ("model",), (
        ("requests", SUM), ("errors", SUM), ("prompt_tokens", SUM), ("completion_tokens", SUM),
        ("total_tokens", SUM), ("cost", SUM), ("reached", SUM), ("latency_sum", SUM),
        ("latency_min", MIN), ("latency_max", MAX), ("ttft_count", SUM), ("ttft_sum", SUM),
    ),
    # ttft_*: successful requests with a time to first token (the gateway records one for
    # streams only), as the TTFT table counts them.
    raw=f"""
SELECT {{hour}} AS hour, model,
       COUNT(*) AS requests, SUM(status_code >= 400) AS errors,
       SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
       SUM(total_tokens) AS total_tokens, total(cost) AS cost, SUM({{reached}}) AS reached,
       total(latency) AS latency_sum, MIN(latency) AS latency_min, MAX(latency) AS latency_max,
       SUM(status_code < 400 AND {{ttft}} IS NOT NULL) AS ttft_count,
       total(CASE WHEN status_code < 400 THEN {{ttft}} END) AS ttft_sum
FROM request_log WHERE {WINDOW}
GROUP BY hour, model
""",
    rollup=f"""
SELECT hour, model,
       SUM(requests) AS requests, SUM(errors) AS errors,
       SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
       SUM(total_tokens) AS total_tokens, total(cost) AS cost,
       SUM(CASE WHEN reached = 1 THEN requests ELSE 0 END) AS reached,
       total(latency_sum) AS latency_sum, MIN(latency_min) AS latency_min,
       MAX(latency_max) AS latency_max,
       SUM(CASE WHEN status_code < 400 THEN ttft_count ELSE 0 END) AS ttft_count,
       total(CASE WHEN status_code < 400 THEN ttft_sum END) AS ttft_sum
FROM rollup_hourly WHERE {ROLLUP_WINDOW}
GROUP BY hour, model
""",
)

#: Who sent the requests: user, key (hash and alias) and team together, so any of them (or a
#: pair, for budgets and distinct counts) adds up from the one view.
WHO = View(
    "who", ("user_id", "key_hash", "key_alias", "team_id"),
    (("requests", SUM), ("total_tokens", SUM), ("cost", SUM)),
    raw=f"""
SELECT {{hour}} AS hour, user_id, key_hash, key_alias, team_id,
       COUNT(*) AS requests, SUM(total_tokens) AS total_tokens, total(cost) AS cost
FROM request_log WHERE {WINDOW}
GROUP BY hour, user_id, key_hash, key_alias, team_id
""",
    rollup=f"""
SELECT hour, user_id, key_hash, key_alias, team_id,
       SUM(requests) AS requests, SUM(total_tokens) AS total_tokens, total(cost) AS cost
FROM rollup_hourly WHERE {ROLLUP_WINDOW}
GROUP BY hour, user_id, key_hash, key_alias, team_id
""",
    requires=frozenset({"key_hash", "key_alias", "team_id"}),
)

STATUS = View(
    "status", ("status_code", "error_type"), (("requests", SUM),),
    raw=f"""
SELECT {{hour}} AS hour, status_code, error_type, COUNT(*) AS requests
FROM request_log WHERE {WINDOW}
GROUP BY hour, status_code, error_type
""",
    rollup=f"""
SELECT hour, status_code, error_type, SUM(requests) AS requests
FROM rollup_hourly WHERE {ROLLUP_WINDOW}
GROUP BY hour, status_code, error_type
""",
    requires=frozenset({"error_type"}),
)

PRICING = View(
    "pricing", ("cost_status", "model"),
    (("requests", SUM), ("total_tokens", SUM), ("estimated", SUM), ("cost", SUM)),
    raw=f"""
SELECT {{hour}} AS hour, cost_status, model, COUNT(*) AS requests,
       SUM(total_tokens) AS total_tokens, SUM(tokens_estimated = 1) AS estimated,
       total(cost) AS cost
FROM request_log WHERE {WINDOW}
GROUP BY hour, cost_status, model
""",
    rollup=f"""
SELECT hour, cost_status, model, SUM(requests) AS requests,
       SUM(total_tokens) AS total_tokens, SUM(estimated) AS estimated, total(cost) AS cost
FROM rollup_hourly WHERE {ROLLUP_WINDOW}
GROUP BY hour, cost_status, model
""",
    requires=frozenset({"cost_status", "tokens_estimated"}),
)

_LATENCY_BUCKET = _bucket("latency")
_TTFT_BUCKET = _bucket("time_to_first_token")

#: Latency of the requests that reached an upstream (the report's one percentile rule).
LATENCY = View(
    "latency", ("model", "bucket"), HISTOGRAM,
    raw=f"""
SELECT {{hour}} AS hour, model, {{bucket_latency}} AS bucket,
       COUNT(*) AS requests, MAX(latency) AS max_value
FROM request_log WHERE {WINDOW} AND {{reached}}
GROUP BY hour, model, bucket
""",
    rollup=f"""
SELECT hour, model, bucket, SUM(requests) AS requests, MAX(max_value) AS max_value
FROM rollup_latency WHERE metric = 'latency' AND reached = 1 AND {ROLLUP_WINDOW}
GROUP BY hour, model, bucket
""",
)

#: The same over every model: the Overview's, the anomalies' and the overhead table's p95
#: latency by period, day and hour read a fifth of the rows.
LATENCY_ALL = View(
    "latency_all", ("bucket",), HISTOGRAM,
    raw=f"""
SELECT {{hour}} AS hour, {{bucket_latency}} AS bucket, COUNT(*) AS requests,
       MAX(latency) AS max_value
FROM request_log WHERE {WINDOW} AND {{reached}}
GROUP BY hour, bucket
""",
    rollup=f"""
SELECT hour, bucket, SUM(requests) AS requests, MAX(max_value) AS max_value
FROM rollup_latency WHERE metric = 'latency' AND reached = 1 AND {ROLLUP_WINDOW}
GROUP BY hour, bucket
""",
)

#: Time to first token of the requests that have one, by whether they reached an upstream (the
#: Models page's rule) and succeeded (the TTFT table's).
TTFT = View(
    "ttft", ("model", "reached", "ok", "bucket"), HISTOGRAM,
    raw=f"""
SELECT {{hour}} AS hour, model, {{reached}} AS reached, status_code < 400 AS ok,
       {{bucket_ttft}} AS bucket, COUNT(*) AS requests, MAX(time_to_first_token) AS max_value
FROM request_log
WHERE {WINDOW} AND time_to_first_token IS NOT NULL
GROUP BY hour, model, reached, ok, bucket
""",
    rollup=f"""
SELECT hour, model, reached, status_class < 4 AS ok, bucket, SUM(requests) AS requests,
       MAX(max_value) AS max_value
FROM rollup_latency WHERE metric = 'ttft' AND {ROLLUP_WINDOW}
GROUP BY hour, model, reached, ok, bucket
""",
    requires=frozenset({"time_to_first_token"}),
)

# -- what only raw rows can tell: the report cache keeps these itself -----------------------

#: Requests that cost something (the cost decomposition's count) and successful requests that
#: used tokens but cost $0. Every column is in idx_request_log_time_cover: no table reads.
COSTED = View(
    "costed", ("model",),
    (("costed", SUM), ("costed_cost", SUM), ("zero_requests", SUM), ("zero_tokens", SUM)),
    raw=f"""
SELECT {{hour}} AS hour, model,
       SUM(cost > 0) AS costed, total(CASE WHEN cost > 0 THEN cost END) AS costed_cost,
       SUM(status_code < 400 AND cost = 0 AND total_tokens > 0) AS zero_requests,
       ifnull(SUM(CASE WHEN status_code < 400 AND cost = 0 AND total_tokens > 0
                       THEN total_tokens END), 0) AS zero_tokens
FROM request_log WHERE {WINDOW}
GROUP BY hour, model
""",
)

ESTIMATED = View(
    "estimated", ("model",), (("requests", SUM), ("total_tokens", SUM), ("cost", SUM)),
    raw=f"""
SELECT {{hour}} AS hour, model, COUNT(*) AS requests, SUM(total_tokens) AS total_tokens,
       total(cost) AS cost
FROM request_log WHERE {WINDOW} AND tokens_estimated = 1
GROUP BY hour, model
""",
    requires=frozenset({"tokens_estimated"}),
)

#: Gateway time (latency - upstream latency) of requests that reached an upstream. Bucketed
#: in milliseconds: the scale's 1 ms floor becomes 1 us.
OVERHEAD = View(
    "overhead", ("bucket",), HISTOGRAM,
    raw=f"""
SELECT {{hour}} AS hour, {{bucket_overhead}} AS bucket,
       COUNT(*) AS requests, MAX(latency - upstream_latency) AS max_value
FROM request_log WHERE {WINDOW} AND upstream_latency IS NOT NULL
GROUP BY hour, bucket
""",
    requires=frozenset({"upstream_latency"}),
)

#: Successful streams with more than one output token (analysis/speed.py's population):
#: tokens/s (bucketed in hundreds of tokens/s, so the scale reaches 380,000), time per output
#: token (bucketed in ms) and time to first token.
_STREAMS = f"""
WITH streams AS (
    SELECT {{hour}} AS hour, model,
           completion_tokens / (latency - time_to_first_token) AS tps,
           (latency - time_to_first_token) / (completion_tokens - 1) AS tpot,
           time_to_first_token AS ttft
    FROM request_log
    WHERE {WINDOW} AND stream = 1 AND status_code < 400 AND time_to_first_token IS NOT NULL
      AND completion_tokens > 1 AND latency > time_to_first_token
)
"""
SPEED = View(
    "speed", ("model", "metric", "bucket"), HISTOGRAM,
    raw=_STREAMS + """
SELECT hour, model, 'tps' AS metric, {bucket_tps} AS bucket, COUNT(*) AS requests,
       MAX(tps) AS max_value FROM streams GROUP BY hour, model, bucket
UNION ALL
SELECT hour, model, 'tpot', {bucket_tpot} AS bucket, COUNT(*), MAX(tpot) FROM streams
GROUP BY hour, model, bucket
UNION ALL
SELECT hour, model, 'ttft', {bucket_stream_ttft} AS bucket, COUNT(*), MAX(ttft) FROM streams
GROUP BY hour, model, bucket
""",
    requires=frozenset({"stream", "time_to_first_token"}),
)

#: Bucket expressions the raw templates name, by placeholder.
BUCKETS: dict[str, Callable[[bool], str]] = {
    "bucket_latency": _LATENCY_BUCKET,
    "bucket_ttft": _TTFT_BUCKET,
    "bucket_overhead": _bucket("latency - upstream_latency", 1000.0),
    "bucket_tps": _bucket("tps", 0.01),
    "bucket_tpot": _bucket("tpot", 1000.0),
    "bucket_stream_ttft": _bucket("ttft"),
}

#: {paths}: one :pN placeholder per metadata key (at least two, so the result is an array).
_COMBO = "json_extract(CASE WHEN json_valid(metadata) THEN metadata END, {paths})"


def breakdown_views(paths: str, params: dict[str, object]) -> tuple[View, View]:
    """The two views of report.breakdowns' keys: counts by the keys' values as one JSON array
    ("combination"), and the latency histogram of those that reached an upstream."""
    combo = _COMBO.format(paths=paths)
    counts = View(
        "breakdown", ("combo",),
        (("requests", SUM), ("tokens", SUM), ("cost", SUM), ("errors", SUM)),
        raw=f"""
SELECT {{hour}} AS hour, {combo} AS combo, COUNT(*) AS requests, SUM(total_tokens) AS tokens,
       total(cost) AS cost, SUM(status_code >= 400) AS errors
FROM request_log WHERE {WINDOW}
GROUP BY hour, combo
""",
        requires=frozenset({"metadata"}), params=params,
    )
    latency = View(
        "breakdown_latency", ("combo", "bucket"), HISTOGRAM,
        raw=f"""
SELECT {{hour}} AS hour, {combo} AS combo, {{bucket_latency}} AS bucket, COUNT(*) AS requests,
       MAX(latency) AS max_value
FROM request_log WHERE {WINDOW} AND {{reached}}
GROUP BY hour, combo, bucket
""",
        requires=frozenset({"metadata"}), params=params,
    )
    return counts, latency


VIEWS: tuple[View, ...] = (MODEL, WHO, STATUS, PRICING, LATENCY, LATENCY_ALL, TTFT, COSTED,
                           ESTIMATED, OVERHEAD, SPEED)


def raw_sql(view: View, columns: set[str], exact: bool, hour: str = HOUR) -> str:
    """The view's raw template for a log with these request_log columns. `hour`: what the
    rows are grouped under, e.g. ':hour' when they are one hour's (no per-row strftime)."""
    values = {name: make(exact) for name, make in BUCKETS.items()}
    values["hour"] = hour
    values["reached"] = "upstream_latency IS NOT NULL" if "upstream_latency" in columns else "1"
    values["ttft"] = "time_to_first_token" if "time_to_first_token" in columns else "NULL"
    return view.raw.format(**values)
