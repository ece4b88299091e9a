"""The parts of `serve --workers N` that need no process tree: the command line, what only
worker 1 runs, gateway.log shared by several processes."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from proxy.cli import build_parser
from proxy.config import parse_config
from proxy.logsetup import BufferedWatchedFileHandler
from proxy.ops.retention import _maintenance
from proxy.server.app import create_app
from proxy.state import WORKER
from proxy.workers.info import WorkerInfo


def test_workers_take_litellms_spelling_and_environment_variable(monkeypatch):
    monkeypatch.delenv("NUM_WORKERS", raising=False)
    assert build_parser().parse_args(["serve"]).workers == 1
    assert build_parser().parse_args(["serve", "--workers", "4"]).workers == 4
    assert build_parser().parse_args(["serve", "--num_workers", "3"]).workers == 3
    monkeypatch.setenv("NUM_WORKERS", "2")
    assert build_parser().parse_args(["serve"]).workers == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", "0"])


@pytest.mark.parametrize(("index", "runs_maintenance"), [(1, True), (2, False)])
def test_only_worker_1_prunes_checkpoints_and_watches_budgets(tmp_path, index, runs_maintenance):
    config = parse_config({
        "general_settings": {"retention_days": 30, "alerting": ["webhook"]},
        "litellm_settings": {"max_budget": 10},
        "environment_variables": {"GENERIC_LOGGER_ENDPOINT": "http://127.0.0.1:9/hook"},
    }, env={})
    worker = WorkerInfo(index=index, count=2, run_dir=tmp_path)
    app = create_app(config, db_path=tmp_path / "l.db", worker=worker)
    assert app[WORKER] is worker
    assert (_maintenance in app.cleanup_ctx) is runs_maintenance
    from proxy.callbacks import CALLBACKS

    assert (app[CALLBACKS].budget_source is not None) is runs_maintenance
    single = create_app(config, db_path=tmp_path / "l.db")
    assert _maintenance in single.cleanup_ctx and single[CALLBACKS].budget_source is not None


def _write_lines(path: str, tag: str, count: int, start: Any) -> None:
    handler = BufferedWatchedFileHandler(path, 0.5)  # gateway.log's handler, flushed every 0.5 s
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test.shared.{tag}")
    logger.propagate = False
    logger.addHandler(handler)
    line = tag * 300  # long lines cross the 8 KiB boundaries of a buffered stream
    start.wait()  # all four write at once
    for i in range(count):
        logger.warning("%s %06d %s", tag, i, line) if i % 50 == 0 else logger.info("%s %06d %s", tag, i, line)
    handler.close()


def test_processes_appending_to_gateway_log_never_split_a_line(tmp_path: Path):
    """What --workers relies on (proxy/workers/logfile.py): the buffered stream hands the kernel
    whole lines, and O_APPEND keeps each write whole."""
    path = tmp_path / "gateway.log"
    logging.getLogger("test.shared").setLevel(logging.INFO)
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    procs = [context.Process(target=_write_lines, args=(str(path), tag, 2000, start)) for tag in "abcd"]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 2000
    for line in lines:
        tag, number, body = line.split(" ")
        assert body == tag * 300, f"a broken line: {line[:80]}…"
    for tag in "abcd":
        assert sorted(int(line.split(" ")[1]) for line in lines if line[0] == tag) == list(range(2000))
