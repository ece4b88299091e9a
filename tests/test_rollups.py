"""Hourly rollups (migration 0003): kept by a trigger in the same transaction as each row, equal
to the raw aggregates after inserts, backfills, prunes; percentiles within one bucket."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import yaml

from proxy.cli import main
from proxy.logdb import rollups
from proxy.logdb.schema import INSERT_REQUEST_SQL, connect_writer
from proxy.logdb.writer import LogWriter
from proxy.ops.backup import backup_file
from proxy.ops.prune import prune_request_log
from tests.datasette_harness import METADATA, clean_env, explore_command, rows, start, stop
from tests.rollup_helpers import (
    assert_rollups_agree,
    assert_within_one_bucket,
    by_model_reached,
    exact_percentiles,
    expected_hourly,
    hostile_records,
    log_before_rollups,
    raw_rows,
    stored_histogram,
    stored_hourly,
    varied_records,
)

NOW = time.time()
MIGRATION = Path(rollups.__file__).with_name("migrations") / "0003_rollups.sql"


def write_log(path: Path, records) -> None:
    writer = LogWriter(path)
    writer.start()
    try:
        writer.submit_many(records)
        assert writer.wait_idle(30)
        assert writer.rows_failed == 0
    finally:
        writer.stop()


@pytest.fixture(scope="module")
def log_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rollups") / "litellm.db"
    write_log(path, varied_records(rows=2500, days=4, seed=21, now=NOW - 60) + hostile_records(NOW))
    return path


# -- the bucket scale --------------------------------------------------------------------------


def test_bucket_scale_is_log_spaced_within_ten_percent():
    lower = rollups.BUCKET_LOWER
    assert lower[:3] == (0.0, 0.001, 0.0011)
    assert lower[-2] < rollups.BUCKET_CEILING <= lower[-1]
    assert all(1.1 * (1 - 1e-5) < b / a < 1.1 * (1 + 1e-5) for a, b in zip(lower[1:], lower[2:], strict=False))
    for value in (0.0, 0.0009, 0.001, 0.00105, 0.0011, 1.0, 2.5, 59.9, 3600.0, 1e6):
        low, high = rollups.bucket_bounds(rollups.bucket_of(value))
        assert low <= value and (high is None or value < high)
    assert rollups.bucket_of(-1.0) == 0


def test_the_migration_holds_the_same_scale(tmp_path):
    assert rollups.buckets_sql() in MIGRATION.read_text()
    conn = connect_writer(tmp_path / "litellm.db")
    stored = conn.execute("SELECT bucket, lower, upper FROM rollup_buckets ORDER BY bucket").fetchall()
    conn.close()
    assert stored == [(b, *rollups.bucket_bounds(b)) for b in range(rollups.BUCKET_COUNT)]


@pytest.mark.parametrize("seed", range(5))
def test_percentile_from_a_histogram_is_within_one_bucket(seed):
    rng = random.Random(seed)
    values = [rng.lognormvariate(0, 1.2) for _ in range(rng.randint(1, 3000))]
    bins: dict[int, list] = {}
    for value in values:
        slot = bins.setdefault(rollups.bucket_of(value), [0, 0.0])
        slot[0] += 1
        slot[1] = max(slot[1], value)
    histogram = [rollups.HistogramBin(b, n, top) for b, (n, top) in bins.items()]
    for percent, exact in exact_percentiles(values, (1, 50, 95, 99, 99.9)).items():
        assert_within_one_bucket(rollups.percentile(histogram, percent), exact)
    assert rollups.percentile(histogram, 100) == max(values)
    assert rollups.percentile([], 50) is None


def test_nearest_rank_is_exact_for_whole_percents():
    assert [rollups.nearest_rank(95, n) for n in (1, 19, 20, 21, 100)] == [1, 19, 19, 20, 95]
    assert rollups.nearest_rank(99.9, 1000) == 999


# -- the trigger -------------------------------------------------------------------------------


def test_rollups_equal_the_raw_aggregates_after_inserts(log_path):
    rows = raw_rows(log_path)
    assert len(rows) == 2503  # the hostile rows were logged, not refused by the trigger
    assert_rollups_agree(log_path, rows)
    hourly = stored_hourly(log_path)
    assert {key[5] for key in hourly} == {"team-a", "team-b", None}
    assert {key[9] for key in hourly} == {0, 1}  # refusals and upstream-reached requests apart
    assert ("", "gpt-4o") in {(key[0], key[1]) for key in hourly}  # the unparseable timestamp
    assert sum(m["requests"] for m in hourly.values()) == 2503


def test_percentiles_read_from_rollups_are_within_one_bucket(log_path):
    rows = raw_rows(log_path)
    conn = sqlite3.connect(f"file:{log_path}?mode=ro", uri=True)
    found = conn.execute(rollups.LATENCY_PERCENTILES, {"since": ""}).fetchall()
    conn.close()
    latencies = by_model_reached(rows)
    assert {row[0] for row in found} == set(latencies)
    for model, requests, p50, p95, p99, top in found:
        assert requests == len(latencies[model])
        exact = exact_percentiles(latencies[model])
        for reported, percent in ((p50, 50), (p95, 95), (p99, 99)):
            assert_within_one_bucket(reported, exact[percent])
        assert top == max(latencies[model])
    # The gateway's own refusals are not in the percentiles.
    assert sum(r[1] for r in found) == sum(r["upstream_latency"] is not None for r in rows) < len(rows)


def test_rollups_follow_every_insert_path(tmp_path):
    """A script's INSERT ... SELECT and a rolled-back batch: the rollups move with the rows."""
    path = tmp_path / "litellm.db"
    write_log(path, varied_records(rows=300, days=2, seed=4, now=NOW))
    conn = connect_writer(path)
    conn.execute("INSERT INTO request_log (timestamp, model, latency, status_code, request_id)"
                 " SELECT timestamp, model, latency * 2, status_code, request_id || '-copy'"
                 " FROM request_log WHERE id <= 50")
    conn.execute("BEGIN")
    conn.executemany(INSERT_REQUEST_SQL, [r.as_row() for r in varied_records(rows=40, days=1, seed=5, now=NOW)])
    conn.execute("ROLLBACK")
    conn.close()
    rows = raw_rows(path)
    assert len(rows) == 350
    assert_rollups_agree(path, rows)


def test_migration_backfills_an_existing_log(tmp_path):
    """A log written before migration 0003 gets rollups equal to its rows when it is migrated."""
    path = log_before_rollups(tmp_path / "old.db", varied_records(rows=800, days=3, seed=8, now=NOW)
                              + hostile_records(NOW))
    with sqlite3.connect(path) as conn:
        assert not rollups.has_rollups(conn)
    assert main(["migrate", "--db", str(path)]) == 0
    assert_rollups_agree(path)
    assert main(["migrate", "--db", str(path)]) == 0  # nothing left to do, nothing doubled
    assert_rollups_agree(path)
    # And the trigger is live afterwards.
    write_log(path, varied_records(rows=100, days=1, seed=9, now=NOW))
    assert_rollups_agree(path)


def test_migrate_command_refuses_a_missing_file(tmp_path, capsys):
    assert main(["migrate", "--db", str(tmp_path / "nope.db")]) == 1
    assert "no such database" in capsys.readouterr().err


# -- pruning: raw rows go, rollups stay ----------------------------------------------------------


def test_prune_keeps_the_rollups_of_deleted_rows(tmp_path):
    path = tmp_path / "litellm.db"
    write_log(path, varied_records(rows=1200, days=10, seed=13, now=NOW))
    before_hourly, before_hist = stored_hourly(path), stored_histogram(path)
    result = prune_request_log(path, 4, now=NOW, batch_size=100)
    assert result.deleted > 300
    rows = raw_rows(path)
    oldest = min(r["timestamp"] for r in rows)
    # Nothing subtracted: a year of history outlives the raw rows.
    assert stored_hourly(path) == before_hourly and stored_histogram(path) == before_hist
    # Hours whose rows are all present still agree with them exactly.
    complete = oldest[:13] + ":00:00"
    later_hourly = {k: v for k, v in stored_hourly(path).items() if k[0] > complete}
    expected = {k: v for k, v in expected_hourly(rows).items() if k[0] > complete}
    assert later_hourly.keys() == expected.keys()
    assert all(later_hourly[k]["requests"] == v["requests"] for k, v in expected.items())
    # New rows after a prune are rolled up as before.
    write_log(path, varied_records(rows=50, days=1, seed=14, now=NOW))
    assert sum(v["requests"] for v in stored_hourly(path).values()) == 1250


def test_sqlite_archive_of_a_prune_rolls_up_each_row_once(tmp_path):
    """Re-running an interrupted archive writes rows again: the archive's rollups must not double."""
    path = tmp_path / "litellm.db"
    write_log(path, varied_records(rows=400, days=10, seed=15, now=NOW))
    archive = tmp_path / "archive"
    snapshot = tmp_path / "copy.db"
    backup_file(path, snapshot)
    prune_request_log(path, 4, archive_dir=archive, archive_format="sqlite", now=NOW)
    prune_request_log(snapshot, 4, archive_dir=archive, archive_format="sqlite", now=NOW)  # same rows again
    for month in archive.glob("*.db"):
        assert_rollups_agree(month)


# -- Datasette on a file without rollups ---------------------------------------------------------


def test_datasette_on_a_log_without_rollups_answers_exactly_then_fast_after_migrate(tmp_path):
    path = log_before_rollups(tmp_path / "litellm.db", varied_records(rows=600, days=3, seed=16, now=NOW - 60))
    latencies = by_model_reached(raw_rows(path))
    server = start(explore_command(path), clean_env(), tmp_path / "before.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            found = {r["model"]: r for r in rows(client, "/litellm/latency_percentiles.json", days=30)}
            page = client.get("/litellm/latency_percentiles").text
    finally:
        stop(server)
    assert "python -m proxy migrate --db" in (tmp_path / "before.log").read_text()
    assert "python -m proxy migrate --db FILE" in page
    assert set(found) == set(latencies)
    for model, row in found.items():  # the raw-row query stood in: exact
        assert row["p95_latency"] == exact_percentiles(latencies[model])[95]

    assert main(["migrate", "--db", str(path)]) == 0
    server = start(explore_command(path), clean_env(), tmp_path / "after.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            fast = {r["model"]: r for r in rows(client, "/litellm/latency_percentiles.json", days=30)}
    finally:
        stop(server)
    assert "migrate" not in (tmp_path / "after.log").read_text()
    for model, row in fast.items():
        assert row["requests"] == len(latencies[model])
        assert_within_one_bucket(row["p95_latency"], exact_percentiles(latencies[model])[95])


def test_the_canned_query_is_the_shared_reader_sql():
    """datasette/metadata.yml's latency_percentiles is rollups.LATENCY_PERCENTILES with :days."""
    query = yaml.safe_load(METADATA.read_text())["databases"]["litellm"]["queries"]["latency_percentiles"]
    since = rollups.SINCE_HOUR_SQL.replace(":days", "abs(CAST(COALESCE(NULLIF(:days, ''), 7) AS REAL))")
    words = " ".join(rollups.LATENCY_PERCENTILES.replace(":since", since).split())
    assert " ".join(query["sql"].split()).replace("( ", "(").replace(" )", ")") == words.replace(
        "( ", "(").replace(" )", ")")


def test_rows_replayed_from_a_spill_file_are_rolled_up_once(tmp_path):
    """The database refused writes, rows went to the spill file, the next start replayed them."""
    path = tmp_path / "litellm.db"
    write_log(path, varied_records(rows=200, days=2, seed=17, now=NOW))
    spilled = varied_records(rows=150, days=2, seed=18, now=NOW)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    writer = LogWriter(path, spill_after=0, retry_interval=0.05)
    try:
        writer.start()
        writer.submit_many(spilled)
        assert writer.wait_idle(20) and writer.status().spilled_pending == 150
    finally:
        writer.stop(20)
        blocker.execute("ROLLBACK")
        blocker.close()
    later = LogWriter(path, retry_interval=0.05)
    later.start()
    try:
        deadline = time.monotonic() + 20
        while later.status().spilled_pending and time.monotonic() < deadline:
            time.sleep(0.05)
        assert later.status().rows_replayed == 150
    finally:
        later.stop()
    rows = raw_rows(path)
    assert len(rows) == 350
    assert_rollups_agree(path, rows)
