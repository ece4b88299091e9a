"""The report from rollups and its cache equals the report from raw rows, on every table.

A log with rollups is read from the report cache (whole hours and days) plus the raw rows of
partial hours; a log without them, or a build with --no-rollups, from the raw rows only, as
before. On the fixed history every table agrees: counts equal, costs to the micro-dollar,
percentiles within one histogram bucket. The cache must then give the same answers as no cache
after new rows, late rows, merges, a restore, another database, pruning, a config change.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.history import generate_history
from proxy.logdb.record import RequestRecord, utc_timestamp
from sitegen.aggregates import BUCKET_NOTE
from sitegen.cache import BUSY_SECONDS, default_dir
from sitegen.data import NO_ROLLUPS, PERCENTILE_TABLES
from tests.site_compare import PERCENTILES, assert_agree, read_tables
from tests.site_fixtures import NOW, build, guide_only_db, history_db, write_records

HOUR = 3600


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return history_db(tmp_path_factory.mktemp("rollups") / "litellm.db")


@pytest.fixture(scope="module")
def exact(history: Path):
    return read_tables(history, rollups=False)


def copy_log(source: Path, folder: Path) -> Path:
    """A copy of a log (its WAL checkpointed first) with its keys.db."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copy(source, folder / "litellm.db")
    shutil.copy(source.with_name("keys.db"), folder / "keys.db")
    return folder / "litellm.db"


def late_records(tag: str, epochs: list[float]) -> list[RequestRecord]:
    """Plain requests at given times (some in old hours: a merge's or a spill replay's)."""
    return [RequestRecord(
        timestamp=utc_timestamp(epoch), request_id=f"{tag}-{i}", endpoint="/v1/chat/completions",
        model="gpt-4o-mini", user_id="late", stream=1, prompt_tokens=50, completion_tokens=20,
        total_tokens=70, cost=0.0123 + i / 1000, latency=0.8 + i / 10, upstream_latency=0.79,
        time_to_first_token=0.2, status_code=200 if i % 3 else 502,
        error_type=None if i % 3 else "upstream_error", cost_status="priced",
        metadata=json.dumps({"project": "late-project", "tags": ["late"]}),
    ) for i, epoch in enumerate(epochs)]


# -- the same tables from rollups as from raw rows ------------------------------------------

def test_every_table_from_rollups_agrees_with_the_raw_rows(history: Path, exact) -> None:
    rolled = read_tables(history)
    assert_agree(exact, rolled)
    # Not vacuous: the history has rows in every table the comparison covers.
    assert all(exact.tables[name] for name in PERCENTILES), [n for n in PERCENTILES if not exact.tables[n]]
    # The histograms answer from the bucket's largest value: some percentiles differ.
    assert rolled.tables["latency_percentiles"] != exact.tables["latency_percentiles"]


def test_pages_say_where_percentiles_come_from(history: Path, exact) -> None:
    rolled = read_tables(history)
    for name in PERCENTILE_TABLES | {"by_project", "by_tags"}:
        assert BUCKET_NOTE in rolled.notes[name], name
        assert BUCKET_NOTE not in exact.notes[name], name
    assert BUCKET_NOTE not in rolled.notes["cost_by_model"]
    assert exact.notices and not rolled.notices  # --no-rollups is said on every page


def test_a_log_without_rollups_is_read_from_raw_rows_and_says_so(tmp_path: Path) -> None:
    db = guide_only_db(tmp_path / "litellm.db")
    out = tmp_path / "public"
    build(db, out)
    overview = (out / "index.html").read_text()
    assert "no hourly rollups" in overview and "python -m proxy migrate --db FILE" in overview
    assert read_tables(db).notices == [NO_ROLLUPS]


def test_model_stats_for_pages_agree_with_the_raw_rows(history: Path) -> None:
    from sitegen.aggregates import model_stats
    from tests.site_compare import within_one_bucket

    def stats(rollups: bool) -> dict[str, dict[str, object]]:
        from datetime import UTC, datetime

        from sitegen.data import Clock, Reader, open_readonly
        conn = open_readonly(history)
        try:
            reader = Reader(conn, Clock(datetime.fromtimestamp(NOW, UTC)), rollups=rollups)
            return {str(r["model"]): r for r in model_stats(reader, 7)}
        finally:
            conn.close()

    raw, rolled = stats(False), stats(True)
    conn = sqlite3.connect(history)
    expected = dict(conn.execute(
        "SELECT model, COUNT(*) FROM request_log WHERE timestamp >= ? AND timestamp < ? GROUP BY model",
        (utc_timestamp(NOW - 7 * 86400), utc_timestamp(NOW))).fetchall())
    assert {m: r["requests"] for m, r in raw.items()} == expected
    assert sorted(raw) == sorted(rolled)
    for model, row in raw.items():
        for key in ("requests", "tokens", "errors", "error_rate"):
            assert rolled[model][key] == row[key]
        for key in ("p50", "p95", "ttft_p50", "ttft_p95"):
            assert within_one_bucket(rolled[model][key], row[key], 4), (model, key)


# -- the cache: only what changed is read, and it never answers for another log ---------------

def test_a_rebuild_from_the_cache_equals_a_build_without_it(history: Path, tmp_path: Path) -> None:
    db = copy_log(history, tmp_path / "log")
    cache = tmp_path / "cache"
    read_tables(db, cache_dir=cache)
    assert len(list(cache.glob("*.sqlite"))) == 1
    # New rows in the current hour, one in an hour the cache holds (5 days ago), one older than
    # anything cached, one after the next build's clock; the clock moves on 26 hours.
    later = NOW + 26 * HOUR
    write_records(db, late_records("late", [NOW + 60, later - 900, NOW - 5 * 86400 + 30,
                                            NOW - 200 * 86400, later + 600, later + 4000]))
    for now in (later, later + 3 * 86400):
        warm = read_tables(db, cache_dir=cache, now=now)
        cold = read_tables(db, now=now)
        assert_agree(cold, warm, histograms=False)
    assert warm.tables["top_users_by_cost"] != read_tables(history, now=later).tables["top_users_by_cost"]


def test_the_cache_never_answers_for_another_or_a_restored_log(history: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    db = copy_log(history, tmp_path / "live")
    backup = copy_log(db, tmp_path / "backup")  # same database_id: a backup of the live log
    write_records(db, late_records("after-backup", [NOW - 3 * HOUR + i for i in range(40)]))
    read_tables(db, cache_dir=cache)
    # The live file is restored from the backup: the cache's newest row is gone.
    shutil.copy(backup, db)
    assert_agree(read_tables(db), read_tables(db, cache_dir=cache), histograms=False)
    # New rows take the ids the lost ones had.
    write_records(db, late_records("reused-ids", [NOW - 2 * HOUR + i for i in range(30)]))
    assert_agree(read_tables(db), read_tables(db, cache_dir=cache), histograms=False)
    # Another database at the same path (another database_id).
    other = tmp_path / "other" / "litellm.db"
    other.parent.mkdir()
    write_records(other, generate_history(days=20, rows=600, seed=99, now=NOW - 300))
    shutil.copy(history.with_name("keys.db"), other.with_name("keys.db"))
    shutil.copy(other, db)
    assert_agree(read_tables(db), read_tables(db, cache_dir=cache), histograms=False)


def test_a_report_on_a_merged_database_is_right(tmp_path: Path) -> None:
    records = list(generate_history(days=35, rows=2400, seed=21, now=NOW - 600))
    shards = [tmp_path / "host-a.db", tmp_path / "host-b.db"]
    write_records(shards[0], records[0::2])
    write_records(shards[1], records[1::2])
    single = tmp_path / "single" / "litellm.db"
    single.parent.mkdir()
    write_records(single, records)
    report = tmp_path / "report" / "litellm.db"
    report.parent.mkdir()

    def merge() -> None:
        done = subprocess.run([sys.executable, "-m", "proxy", "merge", "--into", str(report),
                               f"a={shards[0]}", f"b={shards[1]}"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    merge()
    cache = tmp_path / "cache"
    merged = read_tables(report, cache_dir=cache, breakdowns=("project",))
    # The same rows logged on one host: the same report (the Logs page shows ids and hosts).
    same_rows = frozenset({"id", "_detail"})
    assert_agree(read_tables(single, rollups=False, breakdowns=("project",)), merged, ignore=same_rows)
    assert_agree(read_tables(report, rollups=False, breakdowns=("project",)), merged)
    # Host a logs more, some of it in old hours (its backlog); the next merge and build.
    extra = late_records("host-a-later", [NOW - 3 * 86400 + i * 977 for i in range(25)])
    write_records(shards[0], extra)
    write_records(single, extra)
    merge()
    warm = read_tables(report, cache_dir=cache, breakdowns=("project",))
    assert_agree(read_tables(report, breakdowns=("project",)), warm, histograms=False)
    assert_agree(read_tables(single, rollups=False, breakdowns=("project",)), warm, ignore=same_rows)


def test_pruned_rows_stay_counted_where_the_rollups_keep_them(history: Path, tmp_path: Path) -> None:
    db = copy_log(history, tmp_path / "log")
    cache = tmp_path / "cache"
    before = read_tables(db, cache_dir=cache)
    conn = sqlite3.connect(db)  # as `python -m proxy prune --days 20` deletes (rollups stay)
    deleted = conn.execute("DELETE FROM request_log WHERE timestamp < ?",
                           (utc_timestamp(NOW - 20 * 86400),)).rowcount
    conn.commit()
    conn.close()
    assert deleted
    # Tables over whole days; a rolling window's first partial hour is read from the rows, so
    # there the prune shows (docs/operations.md, "Hourly rollups").
    for read in (read_tables(db, cache_dir=cache), read_tables(db)):  # the cache, and none
        for name in ("daily_cost_trend", "daily_cost_by_model", "status_codes_daily"):
            assert read.tables[name] == before.tables[name], name
        assert read.extent["requests"] == before.extent["requests"]
    raw = read_tables(db, rollups=False)  # the raw rows show the prune
    assert raw.tables["daily_cost_trend"] != before.tables["daily_cost_trend"]


def test_a_changed_breakdown_key_is_computed_afresh(history: Path, tmp_path: Path) -> None:
    db = copy_log(history, tmp_path / "log")
    cache = tmp_path / "cache"
    read_tables(db, cache_dir=cache, breakdowns=("project", "tags"))
    again = read_tables(db, cache_dir=cache, breakdowns=("feature",))
    assert again.tables["by_feature"]
    assert_agree(read_tables(db, breakdowns=("feature",)), again, histograms=False)


def test_an_unreadable_or_busy_cache_is_not_used(history: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    db = copy_log(history, tmp_path / "log")
    cache = tmp_path / "cache"
    read_tables(db, cache_dir=cache)
    (path,) = cache.glob("*.sqlite")
    path.write_bytes(b"not a database" * 100)
    assert_agree(read_tables(db), read_tables(db, cache_dir=cache), histograms=False)
    assert path.read_bytes()[:15] == b"SQLite format 3"  # replaced by a good one
    # Another build holds the cache: this one waits a moment, then builds without it.
    monkeypatch.setattr("sitegen.cache.BUSY_SECONDS", 0.05)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        busy = read_tables(db, cache_dir=cache)
    finally:
        holder.rollback()
        holder.close()
    assert any("not used" in n for n in busy.notices)
    assert_agree(read_tables(db), busy, histograms=False)
    assert BUSY_SECONDS >= 1


def test_the_log_is_never_written_with_a_cache(history: Path, tmp_path: Path) -> None:
    import hashlib
    import os

    db = copy_log(history, tmp_path / "log")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    os.chmod(db, 0o444)
    os.chmod(db.parent, 0o555)
    try:
        read_tables(db, cache_dir=tmp_path / "cache")
    finally:
        os.chmod(db.parent, 0o755)
        os.chmod(db, 0o644)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert list((tmp_path / "cache").glob("*.sqlite"))


def test_the_default_cache_folder_follows_xdg(tmp_path: Path) -> None:
    assert default_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "shin-report"
    assert default_dir({}) == Path.home() / ".cache" / "shin-report"


def test_builds_with_a_cold_a_warm_and_no_cache_are_identical(history: Path, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sitegen.build import BuildOptions, build_site
    from sitegen.data import Clock
    from sitegen.progress import Progress
    from sitegen.sources import Sources
    from tests.site_fixtures import BREAKDOWNS, GATEWAY_BUDGET

    def tree(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    sources = Sources(keys_db=history.with_name("keys.db"), gateway_max_budget=GATEWAY_BUDGET,
                      gateway_budget_duration="30d", breakdowns=BREAKDOWNS)
    trees = []
    for name, cache in (("cold", tmp_path / "cache"), ("warm", tmp_path / "cache"), ("none", None)):
        out = tmp_path / name
        build_site(BuildOptions(db=history, out=out, sources=sources, cache_dir=cache),
                   Clock(datetime.fromtimestamp(NOW, UTC)), Progress(quiet=True))
        trees.append(tree(out))
    assert trees[0] == trees[1] == trees[2]
