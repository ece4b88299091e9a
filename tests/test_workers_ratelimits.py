"""Rate limits hold across the workers of `serve --workers 4`: one real gateway of four
workers, requests sent round-robin on connections pinned to each worker (so each worker sees
fewer requests than the limit: per-process counting would admit them all)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from .processes import start, stop
from .workers_gateway import admin, answer, metric_sum, post, scrape, start_workers
from .workers_helpers import wait_for


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    path = tmp_path_factory.mktemp("limits")
    upstream, upstream_url = start(["proxy.fake_upstream", "--port", "0"], path / "fake.log")
    gateway = start_workers(path, upstream_url, 4)
    yield gateway
    gateway.close()
    assert stop(gateway.proc, timeout=60) == 0
    stop(upstream)


@pytest.fixture(scope="module")
def workers(gw):
    """One keep-alive connection per worker, in a fixed order."""
    pinned = gw.pinned(per_worker=2)
    assert len(pinned) == 4
    return [conns for _, conns in sorted(pinned.items())]


def new_key(gw, **limits) -> str:
    return admin(gw.url, "/key/generate", {"key_alias": f"k{time.monotonic_ns()}", **limits})["key"]


def test_rpm_limit_10_through_4_workers_admits_10(gw, workers):
    alias = f"rpm{time.monotonic_ns()}"
    key = admin(gw.url, "/key/generate", {"key_alias": alias, "rpm_limit": 10})["key"]
    statuses = []
    for i in range(30):
        status, body, headers = post(workers[i % 4][0], content=f"r{i}", key=key)
        statuses.append(status)
        if status == 429:
            assert "rpm_limit of 10 requests per minute" in body["error"]["message"]
            assert int(headers["Retry-After"]) >= 1
    assert statuses[:10] == [200] * 10  # every worker admitted some of the ten
    assert statuses.count(200) == 10 and statuses.count(429) == 20
    # Every worker reports the key's use of its limit: all ten admissions.
    for conns in workers:
        page = scrape(conns[1])
        used = [line for line in page.splitlines() if line.startswith("litellm_api_key_rate_limit_used_metric{")
                and f'api_key_alias="{alias}"' in line and 'rate_limit_type="requests"' in line]
        assert len(used) == 1 and float(used[0].rsplit(" ", 1)[1]) == 10


def test_parallel_requests_are_counted_across_workers(gw, workers):
    key = new_key(gw, max_parallel_requests=2)
    post(workers[0][0], "slow", key=key, send_only=True)  # 4 s upstream: holds a slot
    post(workers[1][0], "slow", key=key, send_only=True)
    wait_for(lambda: metric_sum(scrape(workers[2][1]), "shin_in_flight_requests") == 2)
    for conns in workers[2:]:
        status, body, _ = post(conns[0], key=key)
        assert status == 429 and "max_parallel_requests of 2" in body["error"]["message"]
    assert answer(workers[0][0])[0] == 200 and answer(workers[1][0])[0] == 200
    # The slots are free again (released a moment after each request ends).
    wait_for(lambda: post(workers[3][0], key=key)[0] == 200)


def test_tpm_limit_counts_the_tokens_of_every_worker(gw, workers):
    tokens = post(workers[0][0], content="measure")[1]["usage"]["total_tokens"]
    key = new_key(gw, tpm_limit=2 * tokens + 1)  # the third request passes, the fourth is over
    limits = gw.run_dir() / "limits.db"
    statuses = []
    for i in range(12):
        status, _, _ = post(workers[i % 4][0], content="measure", key=key)
        statuses.append(status)
        admitted = statuses.count(200)
        if status == 200:  # its tokens reach the shared counter a moment after it ends
            wait_for(lambda n=admitted: _tokens_counted(limits) >= n * tokens)
    assert statuses[:3] == [200] * 3
    assert statuses.count(200) == 3 and statuses.count(429) == 9


def _tokens_counted(path) -> int:
    """Tokens in the workers' shared counter (only this key has a tpm limit)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT coalesce(sum(n), 0) FROM tokens").fetchone()[0]
    finally:
        conn.close()
