"""The raw side of "rollups always agree with request_log", computed in Python from the rows.

Nothing here uses the trigger's or the migration's SQL: the hour comes from Python's datetime,
the bucket from `rollups.bucket_of`, the percentiles from sorting. Tests compare the tables the
trigger keeps against these.
"""

from __future__ import annotations

import math
import random
import sqlite3
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from proxy import migrations
from proxy.history import generate_history
from proxy.logdb.record import RequestRecord, utc_timestamp
from proxy.logdb.rollups import BUCKET_RATIO, bucket_of, nearest_rank
from proxy.logdb.schema import LOG_COLUMNS, table_columns

HOURLY_DIMENSIONS = ("hour", "model", "user_id", "key_hash", "key_alias", "team_id", "status_code",
                     "error_type", "cost_status", "reached", "host")
HOURLY_MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
                   "cached_tokens", "reasoning_tokens", "cost", "streams", "estimated", "latency_sum",
                   "latency_min", "latency_max", "upstream_latency_sum", "ttft_count", "ttft_sum")
FLOATS = {"cost", "latency_sum", "latency_min", "latency_max", "upstream_latency_sum", "ttft_sum"}
TEAMS = ("team-a", "team-b", None)


def varied_records(*, rows: int, days: int, seed: int, now: float) -> list[RequestRecord]:
    """proxy.history's log plus what it lacks: teams, gateway refusals, odd latencies."""
    rng = random.Random(seed)
    records = list(generate_history(days=days, rows=rows, seed=seed, now=now))
    for i, record in enumerate(records):
        record.team_id = TEAMS[i % len(TEAMS)]
        if record.status_code >= 400 and rng.random() < 0.5:
            # A refusal by the gateway itself: never reached an upstream.
            record.status_code, record.error_type = rng.choice(((401, "authentication_error"),
                                                                (429, "budget_exceeded")))
            record.upstream_latency = None
        elif record.status_code >= 400:
            record.upstream_latency = round(record.latency * 0.9, 4)  # the upstream's own failure
    odd = records[:: max(1, rows // 6)][:6]
    for record, latency in zip(odd, (0.0, 0.0004, 0.001, 7200.0, 0.05, 12.5), strict=False):
        record.latency = latency
        record.upstream_latency = latency
    return records


def hostile_records(now: float) -> list[RequestRecord]:
    """Rows the trigger must roll up rather than fail on (a failure would lose the row)."""
    base = dict(endpoint="/v1/chat/completions", status_code=200)
    return [
        RequestRecord(timestamp="not a time", request_id="odd-1", model="gpt-4o", latency=1.0, **base),
        RequestRecord(timestamp=utc_timestamp(now), request_id="odd-2", model="", latency=-0.5, **base),
        RequestRecord(timestamp=utc_timestamp(now), request_id="odd-3", model="x<script>", user_id="",
                      latency=0.2, upstream_latency=0.1, time_to_first_token=0.0, stream=1, **base),
    ]


def log_before_rollups(path: Path, records: list[RequestRecord]) -> Path:
    """A log as the gateway wrote it before migration 0003 (schema version 2), with `records`."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for number, _, sql in migrations.load("proxy.logdb"):
            if number < 3:
                for statement in migrations.statements(sql):
                    conn.execute(statement)
        conn.execute("PRAGMA user_version=2")
        present = [c for c in LOG_COLUMNS if c in table_columns(conn)]
        insert = "INSERT INTO request_log ({}) VALUES ({})".format(
            ", ".join(present), ", ".join(f":{c}" for c in present))
        conn.execute("BEGIN")
        conn.executemany(insert, [r.as_row() for r in records])
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path


def _hour(timestamp: Any) -> str:
    try:
        moment = datetime.strptime(str(timestamp)[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ""
    return moment.strftime("%Y-%m-%d %H:00:00")


def raw_rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM request_log")]
    finally:
        conn.close()


def expected_hourly(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    groups: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        reached = int(row["upstream_latency"] is not None)
        key = (_hour(row["timestamp"]), row["model"] or "", row["user_id"], row["key_hash"],
               row["key_alias"], row["team_id"], row["status_code"], row["error_type"],
               row["cost_status"], reached, row.get("host"))
        g = groups.setdefault(key, {m: 0 for m in HOURLY_MEASURES} | {"latency_min": None,
                                                                       "latency_max": None})
        g["requests"] += 1
        g["errors"] += row["status_code"] >= 400
        for column in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                       "reasoning_tokens", "cost"):
            g[column] += row[column]
        g["streams"] += row["stream"] == 1
        g["estimated"] += row["tokens_estimated"] == 1
        g["latency_sum"] += row["latency"]
        g["latency_min"] = row["latency"] if g["latency_min"] is None else min(g["latency_min"], row["latency"])
        g["latency_max"] = row["latency"] if g["latency_max"] is None else max(g["latency_max"], row["latency"])
        g["upstream_latency_sum"] += row["upstream_latency"] or 0.0
        if row["time_to_first_token"] is not None:
            g["ttft_count"] += 1
            g["ttft_sum"] += row["time_to_first_token"]
    return groups


def expected_histogram(rows: list[dict[str, Any]]) -> dict[tuple, tuple[int, float]]:
    bins: dict[tuple, list] = {}
    for row in rows:
        reached = int(row["upstream_latency"] is not None)
        for metric, value in (("latency", row["latency"]), ("ttft", row["time_to_first_token"])):
            if value is None:
                continue
            key = (metric, reached, _hour(row["timestamp"]), row["model"] or "",
                   row["status_code"] // 100, bucket_of(value))
            slot = bins.setdefault(key, [0, -math.inf])
            slot[0] += 1
            slot[1] = max(slot[1], value)
    return {key: (n, top) for key, (n, top) in bins.items()}


def stored_hourly(path: Path) -> dict[tuple, dict[str, Any]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return {tuple(row[d] for d in HOURLY_DIMENSIONS): {m: row[m] for m in HOURLY_MEASURES}
                for row in conn.execute("SELECT * FROM rollup_hourly")}
    finally:
        conn.close()


def stored_histogram(path: Path) -> dict[tuple, tuple[int, float]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {tuple(row[:6]): (row[6], row[7]) for row in conn.execute(
            "SELECT metric, reached, hour, model, status_class, bucket, requests, max_value"
            " FROM rollup_latency")}
    finally:
        conn.close()


def assert_rollups_agree(path: Path, rows: list[dict[str, Any]] | None = None) -> None:
    """Every rollup row equals the aggregate of the raw rows in `path` (or of `rows`)."""
    rows = raw_rows(path) if rows is None else rows
    expected, stored = expected_hourly(rows), stored_hourly(path)
    assert stored.keys() == expected.keys()
    for key, measures in expected.items():
        for name, value in measures.items():
            if name in FLOATS and value is not None:
                assert stored[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, name)
            else:
                assert stored[key][name] == value, (key, name)
    assert stored_histogram(path) == expected_histogram(rows)


def exact_percentiles(values: list[float], percents=(50, 95, 99)) -> dict[int, float]:
    ordered = sorted(values)
    return {p: ordered[nearest_rank(p, len(ordered)) - 1] for p in percents}


def assert_within_one_bucket(reported: float, exact: float) -> None:
    """The histogram's answer: never below the exact value, less than one bucket above it."""
    assert exact <= reported, (reported, exact)
    assert reported < max(exact * BUCKET_RATIO * (1 + 1e-5), 0.001), (reported, exact)


def by_model_reached(rows: list[dict[str, Any]], since_hour: str = "") -> dict[str, list[float]]:
    found: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row["upstream_latency"] is not None and _hour(row["timestamp"]) >= since_hour:
            found[row["model"]].append(row["latency"])
    return found
