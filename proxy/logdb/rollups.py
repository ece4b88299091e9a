"""Hourly rollups of the request log: the bucket scale, the reader SQL and the percentile helper.

Migration 0003 keeps two tables beside `request_log`, filled by the trigger
`request_log_rollup` in the same transaction as each inserted row (the gateway's writer,
`merge`, a spill-file replay and hand-written INSERTs all go through it), and backfilled from
the rows already there when the migration runs:

- `rollup_hourly`: one row per UTC hour x model x user_id x key_hash x key_alias x team_id x
  status_code x error_type x cost_status x reached x host, with requests, errors, tokens, cost,
  streams, estimated-token rows and latency sum/min/max (time to first token too).
- `rollup_latency`: a histogram per hour x model x status class (status_code / 100) x reached,
  for two metrics: `latency` (received to last byte) and `ttft` (time to first token, streams).
  Deliberately coarser than `rollup_hourly`: histogram rows grow with users x keys x occupied
  buckets, and at the fine grain they approach the raw row count again.

`reached` is 1 when the request reached an upstream (`upstream_latency IS NOT NULL`): latency
percentiles count those, not the gateway's own refusals (bad key, budget, rate limit).

Bucket scale (`rollup_buckets`): bucket 0 is [0, 1 ms); bucket k >= 1 is
[1 ms x 1.1^(k-1), 1 ms x 1.1^k) (edges to 6 significant digits); the last bucket, from about
3861 s, is open. A percentile read from the histogram is the largest value seen in the bucket
that holds the nearest-rank request (`max_value`, kept per bucket): never below the exact
nearest-rank value and less than one bucket's width above it, i.e. within 10 % (1 ms below
1 ms). The maximum (p100) is exact.

Agreement: every rollup equals the same aggregate over `request_log` for each hour whose rows
are all present (sums of REAL columns up to floating-point rounding). Rows are never updated;
pruning deletes raw rows and leaves their rollups (a year of history outlives the raw rows), so
hours older than the oldest raw row are answered by the rollups alone.
"""

from __future__ import annotations

import bisect
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Lower edge of bucket 1 (seconds); bucket 0 holds everything faster.
BUCKET_FLOOR = 0.001
#: Upper edge / lower edge of every bucket from 1 on: percentiles are within 10 %.
BUCKET_RATIO = 1.1
#: The last (open) bucket starts at the first edge at or past one hour.
BUCKET_CEILING = 3600.0


def _edges() -> tuple[float, ...]:
    edges = [0.0]
    k = 0
    while True:
        edge = float(f"{BUCKET_FLOOR * BUCKET_RATIO ** k:.6g}")
        edges.append(edge)
        if edge >= BUCKET_CEILING:
            return tuple(edges)
        k += 1


#: Lower edge of each bucket, by bucket number (the same numbers as the rollup_buckets table).
BUCKET_LOWER: tuple[float, ...] = _edges()
BUCKET_COUNT = len(BUCKET_LOWER)

METRIC_LATENCY = "latency"
METRIC_TTFT = "ttft"

#: Tables the rollups live in (readers check for them; a database the gateway has not opened
#: since migration 0003 has none: `python -m proxy migrate --db FILE` adds and backfills them).
TABLES = ("rollup_hourly", "rollup_latency", "rollup_buckets")


def bucket_of(seconds: float) -> int:
    """The bucket a value falls in (the trigger's lookup, done in Python)."""
    return max(0, bisect.bisect_right(BUCKET_LOWER, seconds) - 1)


def bucket_bounds(bucket: int) -> tuple[float, float | None]:
    """[lower, upper) of a bucket in seconds; upper is None for the last, open bucket."""
    upper = BUCKET_LOWER[bucket + 1] if bucket + 1 < BUCKET_COUNT else None
    return BUCKET_LOWER[bucket], upper


def buckets_sql() -> str:
    """The INSERT that fills rollup_buckets (written into migration 0003; a test compares)."""
    rows = []
    for bucket in range(BUCKET_COUNT):
        lower, upper = bucket_bounds(bucket)
        rows.append(f"    ({bucket}, {lower!r}, {'NULL' if upper is None else repr(upper)})")
    return "INSERT INTO rollup_buckets (bucket, lower, upper) VALUES\n" + ",\n".join(rows) + ";\n"


@dataclass(frozen=True)
class HistogramBin:
    bucket: int
    requests: int
    max_value: float


def nearest_rank(percent: float, total: int) -> int:
    """1-based rank of the nearest-rank percentile: ceil(percent/100 x total), at least 1."""
    # Integer arithmetic where the percent is whole, so 95 % of 100 is rank 95, not 96.
    if float(percent).is_integer():
        return max(1, -(-int(percent) * total // 100))
    return max(1, math.ceil(percent * total / 100 - 1e-9))


def percentile(bins: Iterable[HistogramBin | Sequence], percent: float) -> float | None:
    """Nearest-rank percentile from histogram bins (bucket, requests, max_value) of one series.

    Bins of the same bucket (e.g. several hours) may repeat: they are added up. Returns None
    for an empty histogram. The value is the largest seen in the bucket holding that rank: at
    most one bucket's width (10 %) above the exact value, never below it.
    """
    merged: dict[int, list[float]] = {}
    for item in bins:
        bucket, requests, max_value = (
            (item.bucket, item.requests, item.max_value) if isinstance(item, HistogramBin) else item
        )
        slot = merged.setdefault(int(bucket), [0, -math.inf])
        slot[0] += int(requests)
        slot[1] = max(slot[1], float(max_value))
    total = sum(slot[0] for slot in merged.values())
    if total == 0:
        return None
    rank = nearest_rank(percent, total)
    seen = 0
    for bucket in sorted(merged):
        seen += merged[bucket][0]
        if seen >= rank:
            return merged[bucket][1]
    return None  # pragma: no cover - rank <= total


# -- reader SQL ----------------------------------------------------------------------------------

#: Start of the UTC hour `:days` days ago: windows over rollups are whole hours, so they reach
#: up to one hour further back than the same window over raw rows.
SINCE_HOUR_SQL = "strftime('%Y-%m-%d %H:00:00', 'now', '-' || :days || ' days')"

#: Histogram bins of one metric per model since an hour, for `percentile()` or the SQL below.
HISTOGRAM_BY_MODEL = """
SELECT model, bucket, SUM(requests) AS requests, MAX(max_value) AS max_value
FROM rollup_latency
WHERE metric = :metric AND reached = 1 AND hour >= :since
GROUP BY model, bucket
ORDER BY model, bucket
"""

#: p50/p95/p99/max latency per model since an hour (the lead's definition: requests that
#: reached an upstream, failures included). The Datasette canned query is this with :days.
LATENCY_PERCENTILES = """
WITH bins AS (
    SELECT model, bucket, SUM(requests) AS n, MAX(max_value) AS top
    FROM rollup_latency
    WHERE metric = 'latency' AND reached = 1 AND hour >= :since
    GROUP BY model, bucket
),
running AS (
    SELECT model, top,
           SUM(n) OVER (PARTITION BY model ORDER BY bucket) AS seen,
           SUM(n) OVER (PARTITION BY model) AS requests
    FROM bins
)
SELECT model,
       requests,
       MIN(CASE WHEN 100 * seen >= 50 * requests THEN top END) AS p50_latency,
       MIN(CASE WHEN 100 * seen >= 95 * requests THEN top END) AS p95_latency,
       MIN(CASE WHEN 100 * seen >= 99 * requests THEN top END) AS p99_latency,
       MAX(top) AS max_latency
FROM running
GROUP BY model, requests
ORDER BY p95_latency DESC, model
"""


def has_rollups(conn: sqlite3.Connection) -> bool:
    found = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?)", TABLES)}
    return found == set(TABLES)
