"""Reading every table of the report the way a build does, and comparing two reads of it.

`read_tables` runs data.Reader over a log (rollups or raw rows, a cache folder or memory) with
the fixture site's sources. `assert_agree` says two reads agree as the report promises: counts
and text equal, costs to the micro-dollar (sums added in another order), and the percentiles
of a read from histograms within one bucket of the exact ones (never below, less than 10 %
above: proxy.logdb.rollups).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from proxy.logdb.rollups import BUCKET_RATIO
from sitegen.cache import locate
from sitegen.data import Clock, Reader, open_readonly
from sitegen.plan import site_plan
from sitegen.sources import Sources
from tests.site_fixtures import BREAKDOWNS, GATEWAY_BUDGET, NOW

#: Percentile columns of each table, with the digits they are rounded to.
PERCENTILES: dict[str, dict[str, int]] = {
    "period_summary": {"p95_latency": 4},
    "latency_percentiles": {"p50": 4, "p95": 4, "p99": 4},
    "daily_latency_percentiles": {"p50": 4, "p95": 4, "p99": 4},
    "ttft_by_model": {"p50_ttft": 4, "p95_ttft": 4},
    "stream_speed": {"tps_p50": 2, "tps_p95": 2, "ttft_p50": 4, "ttft_p95": 4, "tpot_p50": 6,
                     "tpot_p95": 6},
    "daily_stream_speed": {"tps_p50": 2, "tps_p95": 2},
    "gateway_overhead": {"overhead_p50": 6, "overhead_p99": 6, "latency_p95": 4},
    "by_project": {"p95_latency": 4},
    "by_tags": {"p95_latency": 4},
    "model_stats": {"p50": 4, "p95": 4, "ttft_p50": 4, "ttft_p95": 4},
}
#: Columns computed from percentiles (a change, a threshold): not comparable one by one.
DERIVED = {"period_summary": {"p95_latency_change"}}
#: Anomaly rows judging p95 latency: value and median are percentiles; the rest derive.
P95_ROWS = {"anomalies": {"value": 4, "median": 6}, "daily_health": {"value": 4, "median": 6}}
DERIVED_P95 = {"threshold", "score", "anomaly"}


@dataclass
class Read:
    tables: dict[str, list[dict[str, object]]]
    notes: dict[str, str]
    extent: dict[str, object]
    notices: list[str]


def read_tables(db: Path, *, now: float = NOW, rollups: bool = True, cache_dir: Path | None = None,
                breakdowns: tuple[str, ...] = BREAKDOWNS, clock: Clock | None = None) -> Read:
    conn = open_readonly(db)
    try:
        sources = Sources(keys_db=db.with_name("keys.db"), gateway_max_budget=GATEWAY_BUDGET,
                          gateway_budget_duration="30d", breakdowns=breakdowns)
        reader = Reader(conn, clock or Clock(datetime.fromtimestamp(now, UTC)), sources=sources,
                        cache=locate(conn, db, cache_dir) if cache_dir else None, rollups=rollups)
        extent = reader.extent()
        tables = {spec.name: reader.table(spec) for spec in site_plan(breakdowns).tables}
        reader.finish()
        return Read({n: t.rows for n, t in tables.items()},
                    {n: t.spec.note for n, t in tables.items()}, dict(extent), list(reader.notices))
    finally:
        conn.close()


def within_one_bucket(got: object, want: object, digits: int) -> bool:
    if want is None or got is None:
        return got is want
    slack = 10 ** -digits
    return float(want) <= float(got) <= float(want) * BUCKET_RATIO + slack  # type: ignore[arg-type]


def _is_cost(value: object) -> bool:
    return isinstance(value, float)


def assert_agree(exact: Read, other: Read, *, histograms: bool = True,
                 ignore: frozenset[str] = frozenset()) -> None:
    """`other` agrees with `exact`; with histograms=False its percentiles must be equal too.
    `ignore`: columns that name a row rather than count (ids, the host of a merged log)."""
    assert exact.extent["requests"] == other.extent["requests"]
    assert sorted(exact.tables) == sorted(other.tables)
    for name, want_rows in exact.tables.items():
        got_rows = other.tables[name]
        if name == "anomalies" and histograms:
            # Whether a p95 latency a few percent higher crosses its threshold may differ.
            want_rows, got_rows = _common_p95(want_rows, got_rows)
        assert len(got_rows) == len(want_rows), (name, len(got_rows), len(want_rows))
        percentiles = PERCENTILES.get(name, {})
        for want, got in zip(want_rows, got_rows, strict=True):
            assert sorted(want) == sorted(got), name
            p95_row = name in P95_ROWS and want.get("metric") == "p95 latency"
            for column, value in want.items():
                if column in DERIVED.get(name, set()) or (p95_row and column in DERIVED_P95) \
                        or column in ignore:
                    continue
                digits = percentiles.get(column) or (P95_ROWS[name].get(column) if p95_row else None)
                if digits is not None and histograms:
                    assert within_one_bucket(got[column], value, digits), (name, column, got, want)
                elif _is_cost(value) and _is_cost(got[column]):
                    assert abs(float(got[column]) - value) <= 1.01e-6, (name, column, got, want)  # type: ignore[arg-type]
                else:
                    assert got[column] == value, (name, column, got, want)


def _common_p95(want: list[dict[str, object]], got: list[dict[str, object]]):
    """Anomaly rows: all of cost and error rate; of p95 latency, those flagged in both."""
    def key(r: dict[str, object]) -> tuple[object, ...]:
        return (r["when"], r["grain"], r["metric"])

    both = {key(r) for r in want} & {key(r) for r in got}
    keep = [r for r in want if r["metric"] != "p95 latency" or key(r) in both]
    mine = [r for r in got if r["metric"] != "p95 latency" or key(r) in both]
    return keep, mine
