"""Issue 10, item 2: when the database refuses writes, rows are spilled, never lost.

Real faults against the real gateway: SQLite's write lock held by another connection past
every timeout, a full file system (a small tmpfs; as root), a database capped by
`PRAGMA max_page_count`, a read-only database file. Each: nothing lost, nothing twice,
/health degraded during the fault, every row in the database once it clears (or after a
restart, for rows a stopped gateway left in the spill file).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time

from proxy.logdb.record import RequestRecord, utc_timestamp
from proxy.logdb.schema import INSERT_REQUEST_SQL, connect_writer
from proxy.logdb.writer import LogWriter

from .conftest import default_raw_config
from .log_fault_helpers import (
    assert_each_once,
    chat,
    eventually,
    fill_disk,
    health,
    logged_ids,
    read_only,
    small_tmpfs,
    spill_lines,
)


def config(upstream_base: str, dead_base: str, **general: object) -> dict:
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"].update({"request_log_spill_after": 0.3, **general})
    return raw


def spilled(gw, n: int):  # noqa: ANN001, ANN201
    status = gw.app_status()
    return status if status.spilled_pending == n and status.backlog == 0 else None


async def healthy(gw) -> bool:  # noqa: ANN001
    code, body = await health(gw.url)
    return code == 200 and body["status"] == "healthy"


async def test_lock_held_past_every_timeout_spills_then_replays(gateway_factory, upstream_base, dead_base, caplog):
    gw = await gateway_factory(config(upstream_base, dead_base))
    spill = gw.db_path.with_name("litellm.db-spill.jsonl")
    sent = await chat(gw.url, 5, tag="before")
    gw.flush()
    blocker = sqlite3.connect(gw.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        sent += await chat(gw.url, 20, tag="locked")
        await eventually(lambda: spilled(gw, 20), "20 rows spilled")
        code, body = await health(gw.url)
        assert code == 503 and body["status"] == "degraded"
        assert "database is locked" in body["reason"] and body["log_spilled"] == 20
        assert (await health(gw.url, "/health/readiness"))[0] == 503
        assert (await health(gw.url, "/health/liveliness"))[0] == 200  # a restart would not help
        assert len(spill_lines(spill)) == 20 and len(logged_ids(gw.db_path)) == 5
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await eventually(lambda: healthy(gw), "/health healthy again")
    assert_each_once(gw.db_path, sent)
    assert spill_lines(spill) == []
    status = gw.app_status()
    assert (status.rows_spilled, status.rows_replayed, status.rows_lost) == (20, 20, 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("refuses writes (database is locked)" in m for m in warnings)
    assert any("spilled 20 rows" in m for m in warnings)


async def test_rows_past_the_memory_bound_are_spilled_at_once(gateway_factory, upstream_base, dead_base):
    raw = config(upstream_base, dead_base, request_log_spill_after=600, request_log_max_backlog=5)
    gw = await gateway_factory(raw)
    blocker = sqlite3.connect(gw.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        sent = await chat(gw.url, 12, tag="bound")
        # Nowhere near spill_after, but past the bound: on disk, not in memory.
        await eventually(lambda: spilled(gw, 12), "12 rows spilled")
        code, body = await health(gw.url)
        assert code == 503 and "12 rows in the spill file" in body["reason"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await eventually(lambda: healthy(gw), "/health healthy again")
    assert_each_once(gw.db_path, sent)


async def test_full_disk_without_room_to_spill_holds_rows_in_memory(
    gateway_factory, upstream_base, dead_base, tmp_path, caplog
):
    with small_tmpfs(tmp_path / "mnt") as mnt:
        gw = await gateway_factory(config(upstream_base, dead_base), db_path=mnt / "litellm.db",
                                   keys_db_path=tmp_path / "keys.db")
        sent = await chat(gw.url, 5, tag="before")
        gw.flush()
        filler = fill_disk(mnt)
        sent += await chat(gw.url, 20, tag="full")
        status = await eventually(
            lambda: "spill file cannot be written" in ((s := gw.app_status()).reason or "") and s, "spill error")
        assert status.rows_spilled == 0 and status.backlog == 20  # the spill file is on the same full disk
        code, body = await health(gw.url)
        assert code == 503 and "spill file cannot be written" in body["reason"]
        assert body["log_backlog"] == 20
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("cannot write the spill file" in m and "held in memory" in m for m in errors)
        filler.unlink()
        await eventually(lambda: healthy(gw), "/health healthy again")
        assert_each_once(gw.db_path, sent)
        await gw.server.close()


async def test_full_disk_spills_elsewhere_and_a_restart_replays(gateway_factory, upstream_base, dead_base, tmp_path):
    spill = tmp_path / "spill" / "log-spill.jsonl"
    spill.parent.mkdir()
    raw = config(upstream_base, dead_base, request_log_spill_path=str(spill))
    with small_tmpfs(tmp_path / "mnt") as mnt:
        db = mnt / "litellm.db"
        gw = await gateway_factory(raw, db_path=db, keys_db_path=tmp_path / "keys.db")
        sent = await chat(gw.url, 5, tag="before")
        gw.flush()
        filler = fill_disk(mnt)
        sent += await chat(gw.url, 20, tag="full")
        await eventually(lambda: spilled(gw, 20), "20 rows spilled")
        code, body = await health(gw.url)
        assert code == 503 and "full" in body["reason"]
        sent += await chat(gw.url, 4, tag="still full")
        await gw.server.close()  # stopped while the disk is still full: rows stay spilled
        assert len(spill_lines(spill)) == 24
        assert len(logged_ids(db)) == 5
        filler.unlink()
        gw2 = await gateway_factory(raw, db_path=db, keys_db_path=tmp_path / "keys.db")
        await eventually(lambda: healthy(gw2), "start-up replay done")
        assert_each_once(db, sent)
        assert spill_lines(spill) == [] and gw2.app_status().rows_replayed == 24
        await gw2.server.close()


async def test_read_only_database_spills_and_the_next_start_replays_each_row_once(
    gateway_factory, upstream_base, dead_base, tmp_path
):
    db = tmp_path / "litellm.db"
    connect_writer(db).close()
    spill = tmp_path / "litellm.db-spill.jsonl"
    raw = config(upstream_base, dead_base)
    with read_only(db) as make_writable:
        gw = await gateway_factory(raw, db_path=db)
        sent = await chat(gw.url, 15, tag="read-only")
        await eventually(lambda: spilled(gw, 15), "15 rows spilled")
        code, body = await health(gw.url)
        assert code == 503 and "readonly" in body["reason"]
        await gw.server.close()
        make_writable()
    # A replay that committed one row and died before emptying the spill file:
    first = json.loads(spill_lines(spill)[0])["row"]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(INSERT_REQUEST_SQL, first)
    conn.close()
    gw2 = await gateway_factory(raw, db_path=db)
    await eventually(lambda: healthy(gw2), "start-up replay done")
    assert_each_once(db, sent)
    assert gw2.app_status().rows_replayed == 14  # the one already logged was skipped


async def test_read_only_database_recovers_live_once_writable(gateway_factory, upstream_base, dead_base, tmp_path):
    db = tmp_path / "litellm.db"
    connect_writer(db).close()
    with read_only(db) as make_writable:
        gw = await gateway_factory(config(upstream_base, dead_base), db_path=db)
        sent = await chat(gw.url, 10, tag="read-only")
        await eventually(lambda: spilled(gw, 10), "10 rows spilled")
        make_writable()
        sent += await chat(gw.url, 5, tag="writable")
        await eventually(lambda: healthy(gw), "/health healthy again")
    assert_each_once(db, sent)


def record(i: int, tag: str, size: int = 0) -> RequestRecord:
    return RequestRecord(timestamp=utc_timestamp(), request_id=f"{tag}-{i}", endpoint="/v1/chat/completions",
                         model=tag, messages="x" * size, status_code=200)


def test_database_at_max_page_count_spills_until_pages_are_freed(tmp_path):
    """The non-root way to a full database: SQLite's own page cap on the writer's connection."""
    db = tmp_path / "capped.db"
    seed = LogWriter(db)
    seed.start()
    seed.submit_many(record(i, "filler", 2000) for i in range(200))
    assert seed.wait_idle(10)
    seed.stop()
    conn = sqlite3.connect(db, isolation_level=None)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]

    writer = LogWriter(db, pragmas=(f"PRAGMA max_page_count={pages}",), spill_after=0.1, retry_interval=0.05)
    writer.start()
    try:
        writer.submit_many(record(i, "live", 2000) for i in range(50))
        assert writer.wait_idle(10)  # committed or spilled: nothing left in memory
        status = writer.status()
        assert status.degraded and "full" in (status.reason or "")
        assert status.spilled_pending == 50 and status.rows_spilled == 50
        conn.execute("DELETE FROM request_log WHERE model = 'filler'")  # the fault clears
        deadline = time.monotonic() + 30
        while writer.status().degraded and time.monotonic() < deadline:
            time.sleep(0.05)
        status = writer.status()
        assert not status.degraded and status.rows_replayed == 50
    finally:
        writer.stop()
    ids = [r[0] for r in conn.execute("SELECT request_id FROM request_log")]
    assert sorted(ids) == sorted(f"live-{i}" for i in range(50))
    conn.close()


def test_two_writers_spill_to_their_own_files_and_one_start_replays_both(tmp_path):
    """Several processes on one database (--workers, or two gateways): each owns a spill file
    (a file lock), and a writer starting later adopts the files no one holds any more."""
    db = tmp_path / "shared.db"
    connect_writer(db).close()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    writers = [LogWriter(db, spill_after=0, retry_interval=0.05) for _ in range(2)]
    try:
        for n, writer in enumerate(writers):
            writer.start()
            writer.submit_many(record(i, f"w{n}") for i in range(30))
        for writer in writers:
            assert writer.wait_idle(20) and writer.status().spilled_pending == 30
        paths = {writer.status().spill_path for writer in writers}
        assert paths == {str(tmp_path / "shared.db-spill.jsonl"), str(tmp_path / "shared.db-spill-2.jsonl")}
    finally:
        for writer in writers:
            writer.stop(20)
        blocker.execute("ROLLBACK")
        blocker.close()
    later = LogWriter(db, retry_interval=0.05)
    later.start()
    try:
        deadline = time.monotonic() + 20
        while later.status().spilled_pending and time.monotonic() < deadline:
            time.sleep(0.05)
        assert later.status().rows_replayed == 60
    finally:
        later.stop()
    assert sorted(logged_ids(db)) == sorted(f"w{n}-{i}" for n in range(2) for i in range(30))
    assert not (tmp_path / "shared.db-spill-2.jsonl").exists()
