"""The rate-limit counter the workers of `serve --workers N` share (admin/store/sqlite_limits.py):
two counters on one file stand for two workers (each its own connection and thread, as in two
processes); the end-to-end proof through real workers is in test_workers.py."""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest

from proxy.admin.admission import Subject
from proxy.admin.records import Ref
from proxy.admin.store import sqlite_limits
from proxy.admin.store.sqlite_limits import SqliteRateCounter, create_limits_db, release_owner
from proxy.errors import RateLimited


def subject(name: str = "k", *, rpm: int | None = None, tpm: int | None = None, parallel: int | None = None) -> Subject:
    return Subject(Ref("key", name), f"key `{name}`", rpm, tpm, parallel)


@pytest.fixture
async def pair(tmp_path):
    """Two workers' counters on one limits.db, with one clock we move by hand."""
    path = tmp_path / "limits.db"
    create_limits_db(path)
    now = [1000.0]
    counters = [SqliteRateCounter(path, owner=owner, clock=lambda: now[0]) for owner in (101, 102)]
    for counter in counters:
        await counter.open()
    yield counters, now, path
    for counter in counters:
        await counter.close()


async def admitted(counter: SqliteRateCounter, s: Subject) -> bool:
    try:
        await counter.acquire([s])
    except RateLimited:
        return False
    return True


async def test_rpm_limit_holds_across_workers_and_slides(pair):
    (a, b), now, _ = pair
    limited = subject(rpm=10)
    results = [await admitted(a if i % 2 else b, limited) for i in range(30)]
    assert results.count(True) == 10 and results[:10] == [True] * 10
    with pytest.raises(RateLimited) as refused:
        await b.acquire([limited])
    assert "rpm_limit of 10 requests per minute" in refused.value.message
    assert refused.value.headers["Retry-After"] == "61"  # counted per whole second: 60 to 61 s
    now[0] += 61  # the window slid past every admission
    assert await admitted(a, limited)


async def test_parallel_slots_are_shared_and_released(pair):
    (a, b), _, _ = pair
    limited = subject(parallel=2)
    assert await admitted(a, limited) and await admitted(b, limited)
    assert not await admitted(a, limited) and not await admitted(b, limited)
    a.release([limited.ref])  # queued on a's thread, applied a moment later
    await a.flush()
    assert await admitted(b, limited)
    assert (a.in_flight(limited.ref), b.in_flight(limited.ref)) == (0, 2)


async def test_all_or_none_across_subjects(pair):
    (a, b), _, _ = pair
    key, team = subject("key", rpm=5), subject("team", parallel=1)
    await a.acquire([key, team])
    with pytest.raises(RateLimited) as refused:
        await b.acquire([key, team])  # the team is full: the key's rpm must not count it
    assert "max_parallel_requests of 1" in refused.value.message
    a.release([key.ref, team.ref])
    await a.flush()
    for _ in range(4):
        await b.acquire([key])
        b.release([key.ref])
    assert not await admitted(a, key)  # 1 + 4 admitted: the refused one was not counted


async def test_tpm_counts_tokens_from_every_worker(pair):
    (a, b), now, _ = pair
    limited = subject(tpm=100)
    await a.acquire([limited])
    a.release([limited.ref])
    a.add_tokens([limited], 60)
    await a.flush()
    await b.acquire([limited])  # 60 < 100
    b.release([limited.ref])
    b.add_tokens([limited], 60)
    await b.flush()
    with pytest.raises(RateLimited) as refused:
        await a.acquire([limited])  # 120 >= 100, whichever worker asks
    assert "tpm_limit of 100 tokens per minute" in refused.value.message
    now[0] += 61
    assert await admitted(b, limited)


async def test_usage_for_metrics_counts_every_worker(pair):
    (a, b), now, _ = pair
    limited = subject(rpm=100, tpm=10_000)
    for counter, n in ((a, 3), (b, 2)):
        for _ in range(n):
            await counter.acquire([limited])
            counter.release([limited.ref])
            counter.add_tokens([limited], 7)
        await counter.flush()
    now[0] += 1  # past the cached read
    assert a.usage(limited.ref) == b.usage(limited.ref) == (5, 35)
    assert a.usage(subject("other").ref) == (0, 0)
    now[0] += 61
    assert a.usage(limited.ref) == (0, 0)


async def test_a_dead_workers_slots_are_released_by_the_supervisor(pair):
    (a, b), _, path = pair
    limited = subject(parallel=1)
    await a.acquire([limited])  # worker a dies holding it
    assert not await admitted(b, limited)
    assert release_owner(path, a.owner) == 1
    assert await admitted(b, limited)


async def test_forget_drops_a_deleted_keys_counts(pair):
    (a, b), _, _ = pair
    limited = subject(rpm=1)
    await a.acquire([limited])
    assert not await admitted(b, limited)
    a.forget(limited.ref)
    await a.flush()
    assert await admitted(b, limited)


async def test_a_locked_file_falls_back_to_counting_alone_and_recovers(pair, monkeypatch, caplog):
    """A worker holding the file's write lock (or a file that cannot be written) must not stop
    requests: each worker counts alone for RETRY_AFTER seconds, with an ERROR, then shares again."""
    (a, b), now, path = pair
    monkeypatch.setattr(sqlite_limits, "RETRY_AFTER", 5.0)
    limited = subject(rpm=2)
    await a.acquire([limited])  # one shared admission
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA busy_timeout=0")
    blocker.execute("BEGIN IMMEDIATE")
    try:
        caplog.set_level(logging.ERROR, logger="proxy.keys")
        started = time.monotonic()
        assert await admitted(b, limited)  # waited busy_timeout, then counted alone
        assert time.monotonic() - started >= sqlite_limits.BUSY_MS / 1000 * 0.9
        assert "each worker counts alone" in caplog.text
        assert await admitted(b, limited)
        assert not await admitted(b, limited)  # alone, b still holds its own limit of 2
        b.release([limited.ref])  # released to the counter that admitted it
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    now[0] += 6  # past RETRY_AFTER: shared again; the file has a's one admission
    assert await admitted(b, limited)
    assert not await admitted(a, limited)
