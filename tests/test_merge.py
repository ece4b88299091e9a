"""`python -m proxy merge`: shards into one log database, every row once, with its host."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from proxy.cli import main
from proxy.logdb.schema import INSERT_REQUEST_SQL, connect_writer
from proxy.logdb.writer import LogWriter
from proxy.ops.backup import backup_file
from proxy.ops.merge import merge_logs, parse_shard
from tests.datasette_harness import REPO, clean_env, explore_command, rows, start, stop
from tests.rollup_helpers import (
    assert_rollups_agree,
    assert_within_one_bucket,
    by_model_reached,
    exact_percentiles,
    raw_rows,
    varied_records,
)

NOW = time.time()


def write(path: Path, records) -> None:
    writer = LogWriter(path)
    writer.start()
    try:
        writer.submit_many(records)
        assert writer.wait_idle(30)
    finally:
        writer.stop()


def merged(path: Path) -> dict[str, str]:
    """request_id -> host of every row of a merged database (asserting each id appears once)."""
    found = [(r["request_id"], r["host"]) for r in raw_rows(path)]
    ids = [request_id for request_id, _ in found]
    assert len(ids) == len(set(ids)), "a row was merged twice"
    return dict(found)


def ids(path: Path) -> set[str]:
    return {r["request_id"] for r in raw_rows(path)}


def test_overlapping_merges_copy_every_row_once(tmp_path):
    a, b, report = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "report.db"
    first = varied_records(rows=600, days=3, seed=1, now=NOW - 3600)
    write(a, first[:300])
    write(b, varied_records(rows=400, days=3, seed=2, now=NOW))
    morning = tmp_path / "backups" / "a-morning.db"
    morning.parent.mkdir()
    backup_file(a, morning)
    write(a, first[300:])

    one = merge_logs(report, [("host-a", morning)])
    assert one.copied == 300
    # The live file continues where its morning backup stopped (same database, same mark).
    two = merge_logs(report, [("host-a", a), ("host-b", b)], batch_size=128)
    assert [(s.host, s.copied, s.seen, s.full_scan) for s in two.shards] == [
        ("host-a", 300, 300, False), ("host-b", 400, 400, False)]
    # Everything again, plus the old backup: nothing new.
    three = merge_logs(report, [("host-b", b), ("host-a", morning), ("host-a", a)])
    assert [(s.copied, s.seen, s.full_scan) for s in three.shards] == [
        (0, 0, False), (0, 300, True), (0, 0, False)]  # the older backup is checked row by row

    hosts, of_a, of_b = merged(report), ids(a), ids(b)
    assert set(hosts) == of_a | of_b
    assert {h for rid, h in hosts.items() if rid in of_a} == {"host-a"}
    assert {h for rid, h in hosts.items() if rid in of_b} == {"host-b"}
    assert_rollups_agree(report)
    conn = sqlite3.connect(report)
    per_host = dict(conn.execute("SELECT host, SUM(requests) FROM rollup_hourly GROUP BY host"))
    state = conn.execute("SELECT host, rows, last_id FROM merge_sources ORDER BY host").fetchall()
    conn.close()
    assert per_host == {"host-a": 600, "host-b": 400}
    assert state == [("host-a", 600, 600), ("host-b", 400, 400)]


def test_the_same_rows_through_two_databases_are_copied_once(tmp_path):
    """Two merged files that share a host's rows, merged together: request_id decides."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    write(a, varied_records(rows=200, days=2, seed=3, now=NOW))
    write(b, varied_records(rows=100, days=2, seed=30, now=NOW))
    left, right, both = tmp_path / "left.db", tmp_path / "right.db", tmp_path / "both.db"
    merge_logs(left, [("a", a)])
    merge_logs(right, [("a", a), ("b", b)])
    merge_logs(both, [("x", left)])
    again = merge_logs(both, [("y", right)])
    assert again.copied == 100 and again.shards[0].seen == 300
    assert sorted(merged(both).values()).count("a") == 200
    # A backup of the same file is the same database: it continues from the same mark.
    copy = tmp_path / "copy-of-a.db"
    backup_file(a, copy)
    assert merge_logs(left, [("a", copy)]).shards[0].seen == 0


def test_host_names_come_from_the_argument_the_shard_or_the_file(tmp_path):
    gateway = tmp_path / "gw.db"
    write(gateway, varied_records(rows=50, days=1, seed=4, now=NOW))
    old = tmp_path / "backups" / "host-c-20250101T000000Z.db"  # an older gateway's file
    old.parent.mkdir()
    conn = sqlite3.connect(old)
    conn.executescript((REPO / "proxy/logdb/migrations/0001_request_log.sql").read_text())
    conn.executemany("INSERT INTO request_log (timestamp, model, latency, status_code) VALUES (?, ?, ?, ?)",
                     [("2025-01-01 10:00:00.000", "gpt-4", 1.5, 200)] * 3)
    conn.commit()
    conn.close()
    report = tmp_path / "report.db"

    result = merge_logs(report, [(None, gateway), (None, old)])
    assert [s.host for s in result.shards] == [socket.gethostname(), "host-c"]
    hosts = merged(report)
    assert sorted(hosts.values()).count("host-c") == 3
    # Rows without a request_id are keyed by their shard and row id: merged once, however often.
    assert merge_logs(report, [(None, old)]).copied == 0
    assert len(merged(report)) == 53
    # A shard that is itself a merge keeps its rows' hosts; the name labels only unlabeled rows.
    outer = tmp_path / "outer.db"
    merge_logs(outer, [("ignored", report)])
    assert merged(outer) == hosts
    assert_rollups_agree(outer)


def test_a_mark_that_no_longer_fits_rescans_the_shard(tmp_path):
    """Same database_id, different rows under the old ids (a log emptied and refilled)."""
    a, report = tmp_path / "a.db", tmp_path / "report.db"
    write(a, varied_records(rows=120, days=1, seed=5, now=NOW))
    merge_logs(report, [("a", a)])
    conn = connect_writer(a)
    conn.execute("DELETE FROM request_log")
    conn.close()
    write(a, varied_records(rows=150, days=1, seed=6, now=NOW))
    result = merge_logs(report, [("a", a)])
    assert result.shards[0].full_scan and result.copied == 150
    assert len(merged(report)) == 270


def test_a_mark_pruned_away_continues_after_it(tmp_path):
    a, report = tmp_path / "a.db", tmp_path / "report.db"
    records = varied_records(rows=200, days=1, seed=7, now=NOW)
    write(a, records[:100])
    merge_logs(report, [("a", a)])
    write(a, records[100:150])
    conn = connect_writer(a)
    conn.execute("DELETE FROM request_log WHERE id <= 100")  # retention pruned past the mark
    conn.close()
    write(a, records[150:])
    result = merge_logs(report, [("a", a)])
    assert not result.shards[0].full_scan
    assert (result.copied, result.shards[0].seen) == (100, 100)


def test_merging_while_the_shard_is_written(tmp_path, caplog):
    """The gateway's writer keeps committing while merges run: no lost, doubled or blocked rows."""
    a, report = tmp_path / "a.db", tmp_path / "report.db"
    records = varied_records(rows=3000, days=2, seed=8, now=NOW)
    writer = LogWriter(a, batch_size=50, max_latency=0.001)
    writer.start()
    stop = threading.Event()

    def produce() -> None:
        for i in range(0, len(records), 50):
            writer.submit_many(records[i:i + 50])
            time.sleep(0.002)
        stop.set()

    producer = threading.Thread(target=produce)
    producer.start()
    merges = 0
    try:
        while not stop.is_set() or merges < 3:
            merge_logs(report, [("a", a)], batch_size=100)
            merges += 1
        producer.join()
        assert writer.wait_idle(30)
    finally:
        writer.stop()
    assert writer.rows_failed == 0
    # The merge only ever read the shard: the writer never found it locked.
    assert not [r for r in caplog.records if r.name == "proxy.logdb" and "busy" in r.getMessage()]
    merge_logs(report, [("a", a)])
    assert set(merged(report)) == {r.request_id for r in records}
    assert_rollups_agree(report)


def test_merge_command_line(tmp_path, capsys):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    write(a, varied_records(rows=40, days=1, seed=9, now=NOW))
    write(b, varied_records(rows=30, days=1, seed=10, now=NOW))
    report = tmp_path / "report.db"
    assert main(["merge", "--into", str(report), f"alpha={a}", f"beta={b}"]) == 0
    out = capsys.readouterr().out
    assert "alpha: 40 new rows" in out and "beta: 30 new rows" in out and "merged 70 new rows" in out
    assert main(["merge", "--into", str(report), f"alpha={a}", f"beta={b}"]) == 0
    assert "merged 0 new rows" in capsys.readouterr().out

    assert main(["merge", "--into", str(report), str(tmp_path / "missing.db")]) == 1
    assert "no such database" in capsys.readouterr().err
    assert main(["merge", "--into", str(report), str(report)]) == 1
    assert "--into database itself" in capsys.readouterr().err
    keys = tmp_path / "keys.db"
    sqlite3.connect(keys).execute("CREATE TABLE keys (hash TEXT)").connection.close()
    assert main(["merge", "--into", str(report), str(keys)]) == 1
    assert "not a Shin Gateway request log" in capsys.readouterr().err
    assert main(["merge", "--into", str(keys), str(a)]) == 1
    assert "not a request log database" in capsys.readouterr().err
    assert {r[0] for r in sqlite3.connect(keys).execute("SELECT name FROM sqlite_master")} == {"keys"}
    assert len(merged(report)) == 70


def test_parse_shard():
    assert parse_shard("a=/x/y.db") == ("a", Path("/x/y.db"))
    assert parse_shard("/x/y.db") == (None, Path("/x/y.db"))
    assert parse_shard("/x/k=v.db") == (None, Path("/x/k=v.db"))


@pytest.fixture
def merged_explore(tmp_path):
    a, b, report = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "report.db"
    write(a, varied_records(rows=500, days=3, seed=11, now=NOW - 120))
    write(b, varied_records(rows=500, days=3, seed=12, now=NOW - 120))
    merge_logs(report, [("a", a), ("b", b)])
    server = start(explore_command(report), clean_env(), tmp_path / "datasette.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client, report
    finally:
        stop(server)


def test_datasette_serves_the_merged_database(merged_explore):
    """`make explore DB=report.db`: the canned percentiles come from the merged rollups."""
    client, report = merged_explore
    latencies = by_model_reached(raw_rows(report))
    found = rows(client, "/report/latency_percentiles.json", days=30)
    assert {r["model"] for r in found} == set(latencies)
    for row in found:
        exact = exact_percentiles(latencies[row["model"]])
        assert row["requests"] == len(latencies[row["model"]])
        assert_within_one_bucket(row["p95_latency"], exact[95])
        assert_within_one_bucket(row["p50_latency"], exact[50])
    by_host = rows(client, "/report.json", sql="SELECT host, COUNT(*) AS n FROM request_log GROUP BY host")
    assert {r["host"]: r["n"] for r in by_host} == {"a": 500, "b": 500}


def test_a_row_inserted_into_a_merged_database_needs_no_host(tmp_path):
    """The merged file stays a normal log: the gateway's insert (no host column) still works."""
    report = tmp_path / "report.db"
    a = tmp_path / "a.db"
    write(a, varied_records(rows=20, days=1, seed=13, now=NOW))
    merge_logs(report, [("a", a)])
    conn = connect_writer(report)
    conn.executemany(INSERT_REQUEST_SQL, [r.as_row() for r in varied_records(rows=5, days=1, seed=14, now=NOW)])
    conn.close()
    assert sorted(merged(report).values(), key=str).count(None) == 5
    assert_rollups_agree(report)
