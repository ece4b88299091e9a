"""Issue 13, `serve --workers N`: N real worker processes under a real supervisor, real clients
(the openai SDK; http.client on connections pinned to one worker through /proc)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import time

import openai
import pytest

from proxy.server.shutdown import SHUTDOWN_MARGIN
from proxy.workers.supervisor import KILL_MARGIN

from .conftest import MASTER_KEY
from .processes import start, stop
from .test_metrics_dashboards import LITELLM_NAMES_PROMTOOL_FLAGS, PROMTOOL, promtool
from .workers_gateway import metric_sum, post, scrape, start_workers
from .workers_helpers import wait_for

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+( \[worker \d\])?: ")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The fake upstream; its streams run for minutes (for SIGTERM with streams in flight)."""
    path = tmp_path_factory.mktemp("upstream")
    proc, url = start(["proxy.fake_upstream", "--port", "0", "--chunk-delay", "0.5", "--stream-chunks", "400"],
                      path / "fake.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def fast_upstream(tmp_path_factory):
    path = tmp_path_factory.mktemp("fast-upstream")
    proc, url = start(["proxy.fake_upstream", "--port", "0"], path / "fake.log")
    yield url
    stop(proc)


def served_by(log_text: str) -> set[str]:
    """Which workers wrote access lines."""
    return set(re.findall(r"proxy\.access \[worker (\d)\]", log_text))


async def test_four_workers_log_a_known_count_once_and_any_worker_reports_it_in_metrics(tmp_path, fast_upstream):
    gw = start_workers(tmp_path, fast_upstream, 4)
    try:
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=60)
        gate = asyncio.Semaphore(40)  # 40 connections at once: spread over the workers

        async def one(i: int) -> str:
            async with gate:
                messages = [{"role": "user", "content": f"count {i}"}]
                if i % 4 == 0:
                    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
                    ids = {chunk.id async for chunk in stream}
                    return ids.pop()
                reply = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                return reply.id

        sent = 200
        replies = await asyncio.gather(*(one(i) for i in range(sent)))
        await client.close()
        assert len(set(replies)) == sent

        # /metrics from each worker in turn covers all of them.
        pinned = gw.pinned()
        assert len(pinned) == 4
        for conns in pinned.values():
            page = scrape(conns[0])
            assert metric_sum(page, "litellm_requests_metric_total") == sent
            assert metric_sum(page, "litellm_total_tokens_metric_total") > 0
            assert metric_sum(page, "shin_in_flight_requests") == 0
            assert 'pid="' not in page, "every gauge says how workers combine (no per-process series)"
        if PROMTOOL is not None:  # the page is valid exposition text, as a single process's is
            status, lines = promtool(page)
            assert set(lines) <= {f"{n} {why}" for n, why in LITELLM_NAMES_PROMTOOL_FLAGS.items()}
        # Per-worker state (each worker's request-log writer) is copied into the shared files
        # every second: every worker soon reports every worker's rows.
        for conns in pinned.values():
            wait_for(lambda c=conns[0]: metric_sum(scrape(c), "shin_request_log_rows_written_total") == sent)
        gw.close()

        code = stop(gw.proc, timeout=60)
        assert code == 0
        rows = gw.rows("SELECT request_id, status_code FROM request_log")
        assert len(rows) == sent
        assert len({r["request_id"] for r in rows}) == sent
        assert {r["status_code"] for r in rows} == {200}
        text = gw.log.read_text()
        assert len(served_by(text)) >= 2, "the load reached several workers"
        assert text.count("request_id=") == sent
        bad = [line for line in text.splitlines() if not LINE.match(line)]
        assert not bad, f"broken lines in gateway.log: {bad[:3]}"
        assert not gw.run_dir().exists(), "the run directory is removed at exit"
    finally:
        gw.close()
        stop(gw.proc)


def test_a_killed_worker_is_replaced_and_its_slots_released(tmp_path, fast_upstream):
    gw = start_workers(tmp_path, fast_upstream, 2)
    try:
        key = _key(gw.url, max_parallel_requests=1)
        pinned = gw.pinned()
        (victim, victim_conns), (survivor, survivor_conns) = sorted(pinned.items())
        post(victim_conns[0], "slow", key=key, send_only=True)  # holds the key's one slot
        wait_for(lambda: metric_sum(scrape(survivor_conns[0]), "shin_in_flight_requests") == 1)
        assert post(survivor_conns[0], key=key)[0] == 429
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in gw.pids().values())
        out = gw.out.read_text()
        assert re.search(rf"ERROR proxy.workers: worker \d \(pid {victim}\) was killed by SIGKILL; starting another", out)
        # The survivor keeps serving; the dead worker's slot is given back.
        wait_for(lambda: f"released 1 parallel-request slots held by pid {victim}" in gw.out.read_text())
        status, body, _ = post(survivor_conns[0], key=key)
        assert status == 200, body
        wait_for(lambda: len(gw.pids()) == 2 and "Running on" in gw.out.read_text().split(f"pid {victim})")[-1])
        replacement = (set(gw.pids().values()) - {survivor}).pop()
        gw.close()
        for conns in gw.pinned().values():  # both workers, the new one included, answer
            assert all(post(c)[0] == 200 for c in conns)
        assert replacement in gw.pids().values()
        gw.close()
        assert stop(gw.proc, timeout=60) == 0
        # The killed worker's request died with it (no row); every answered one has its row.
        statuses = sorted(r["status_code"] for r in gw.rows("SELECT status_code FROM request_log"))
        assert statuses == [200, 200, 200, 429]
    finally:
        gw.close()
        stop(gw.proc)


def test_sigterm_drains_streams_on_every_worker_within_the_grace(tmp_path, upstream):
    gw = start_workers(tmp_path, upstream, 3)
    try:
        pinned = gw.pinned(per_worker=2)
        streams = []
        for quick, stream in pinned.values():
            for i in range(3):
                assert post(quick, content=f"q{i}")[0] == 200
            post(stream, content="a long story", stream=True, send_only=True)
            resp = stream.getresponse()
            assert resp.status == 200
            assert resp.read1(64).startswith(b"data: ")  # the first chunk reached us
            streams.append(resp)
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "no longer accepting" in gw.log.read_text())
        wait_for(lambda: _refused(gw.port), timeout=5)
        code = gw.proc.wait(timeout=2 + SHUTDOWN_MARGIN + KILL_MARGIN + 5)
        elapsed = time.monotonic() - started
        assert code == 0
        assert elapsed < 2 + SHUTDOWN_MARGIN + KILL_MARGIN
        for resp in streams:  # each stream ends with the in-band error event, not a cut body
            body = b""
            while chunk := resp.read1(65536):
                body += chunk
            last = body.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
            assert json.loads(last.removeprefix(b"data: "))["error"]["type"] == "cancelled_by_shutdown"
        text = gw.log.read_text()
        assert len(re.findall(r"\[worker \d\]: SIGTERM: no longer accepting requests; 1 in flight", text)) == 3
        rows = gw.rows("SELECT request_id, status_code, error_type, response FROM request_log")
        assert len(rows) == 12 and len({r["request_id"] for r in rows}) == 12
        cancelled = [r for r in rows if r["status_code"] == 503]
        assert len(cancelled) == 3
        assert {r["error_type"] for r in cancelled} == {"cancelled_by_shutdown"}
        assert all(r["response"] for r in cancelled), "each keeps what was streamed"
    finally:
        gw.close()
        stop(gw.proc)


def test_a_worker_past_the_deadline_is_killed_and_the_exit_says_so(tmp_path, fast_upstream):
    gw = start_workers(tmp_path, fast_upstream, 2, shutdown_grace=0.5)
    try:
        frozen = gw.pids()[2]
        os.kill(frozen, signal.SIGSTOP)  # cannot hear the order to stop
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(timeout=0.5 + SHUTDOWN_MARGIN + KILL_MARGIN + 10)
        assert code == 1
        assert time.monotonic() - started >= 0.5 + SHUTDOWN_MARGIN
        assert re.search(rf"ERROR proxy.workers: worker 2 \(pid {frozen}\) still running [\d.]+s after SIGTERM: killed",
                         gw.out.read_text())
    finally:
        stop(gw.proc)


def test_workers_stop_when_the_supervisor_is_gone(tmp_path, fast_upstream):
    gw = start_workers(tmp_path, fast_upstream, 2)
    try:
        pids = list(gw.pids().values())
        for conns in gw.pinned().values():
            assert post(conns[0])[0] == 200
        gw.close()
        gw.proc.kill()
        gw.proc.wait()
        wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=2 + SHUTDOWN_MARGIN)
        assert gw.row_count() == 2
        assert gw.log.read_text().count("the supervisor is gone: stopping") == 2
    finally:
        for pid in gw.pids().values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(gw.run_dir(), ignore_errors=True)  # a killed supervisor leaves it (documented)


def test_each_worker_spills_to_its_own_file_and_every_row_lands_once(tmp_path, fast_upstream):
    import sqlite3

    gw = start_workers(tmp_path, fast_upstream, 2, request_log_spill_after=0.3)
    blocker = sqlite3.connect(gw.db, isolation_level=None)
    try:
        pinned = gw.pinned()
        blocker.execute("BEGIN IMMEDIATE")  # the database refuses every writer
        for conns in pinned.values():
            for i in range(10):
                assert post(conns[0], content=f"s{i}")[0] == 200
        spills = [tmp_path / "litellm.db-spill.jsonl", tmp_path / "litellm.db-spill-2.jsonl"]
        wait_for(lambda: all(p.exists() and p.read_text().count("\n") == 10 for p in spills))
        blocker.execute("ROLLBACK")
        wait_for(lambda: gw.row_count() == 20)
        gw.close()
        assert stop(gw.proc, timeout=60) == 0
        rows = gw.rows("SELECT request_id FROM request_log")
        assert len(rows) == 20 and len({r["request_id"] for r in rows}) == 20
    finally:
        blocker.close()
        gw.close()
        stop(gw.proc)


def test_one_worker_is_the_single_process_it_always_was(tmp_path, fast_upstream):
    gw_config = tmp_path / "c"
    gw_config.mkdir()
    from .workers_gateway import write_config

    config = write_config(gw_config, fast_upstream)
    proc, url = start(["proxy", "serve", "--config", str(config), "--port", "0", "--db", str(tmp_path / "l.db"),
                       "--log-file", str(tmp_path / "g.log"), "--workers", "1"], tmp_path / "out")
    try:
        from .workers_helpers import serving_pid

        port = int(url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port))
        assert wait_for(lambda: serving_pid([proc.pid], port, sock.getsockname()[1])) == proc.pid
        sock.close()
        assert "proxy.workers" not in (tmp_path / "out").read_text()
        children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        assert children == []
    finally:
        assert stop(proc) == 0


def test_size_rotation_is_refused_with_workers(tmp_path, fast_upstream):
    from .workers_gateway import write_config

    config = write_config(tmp_path, fast_upstream, log_max_bytes=1000000)
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", "0",
                           "--db", str(tmp_path / "l.db"), "--log-file", str(tmp_path / "g.log"), "--workers", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "log_max_bytes: size-based rotation needs one process" in done.stderr


def _key(url: str, **limits: object) -> str:
    from .workers_gateway import admin

    return admin(url, "/key/generate", {"key_alias": f"k{time.monotonic_ns()}", **limits})["key"]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) is gone for our purposes.
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
