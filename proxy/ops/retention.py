"""The gateway's own maintenance: scheduled retention prunes and periodic WAL checkpoints.

Both run their SQLite work on a worker thread (`asyncio.to_thread`), never on the event loop,
through their own connections; the request-log writer thread is untouched. At shutdown the
loops are told to stop and awaited: a prune stops after its current batch.

  general_settings:
    retention_days: 90              # prune rows older than this (unset: keep everything)
    retention_interval: 3600        # seconds between prunes; the first runs at start-up
    retention_archive_dir: archive  # optional: archive rows before deleting them
    wal_checkpoint_interval: 60     # seconds; 0 leaves checkpoints to SQLite alone
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from ..errors import ConfigError
from ..state import CONFIG, DB_PATH, WORKER
from .checkpoint import Checkpointer
from .prune import prune_request_log

log = logging.getLogger("proxy.ops.retention")


def setup_retention(app: web.Application) -> None:
    """Register the maintenance loops (a no-op for whatever the config leaves off)."""
    general = app[CONFIG].general
    if general.retention_days is not None and general.retention_days < 1:
        raise ConfigError(f"general_settings.retention_days: must be at least 1, got {general.retention_days}")
    if general.retention_interval <= 0:
        raise ConfigError("general_settings.retention_interval: must be > 0 seconds")
    if general.wal_checkpoint_interval < 0:
        raise ConfigError("general_settings.wal_checkpoint_interval: must be >= 0 (0: off)")
    worker = app.get(WORKER)
    if worker is not None and not worker.primary:
        return  # serve --workers N: worker 1 prunes and checkpoints for all of them
    app.cleanup_ctx.append(_maintenance)


async def _maintenance(app: web.Application) -> AsyncIterator[None]:
    general = app[CONFIG].general
    db_path = app[DB_PATH]
    stopping = asyncio.Event()
    halt = threading.Event()  # seen by the prune thread between batches
    tasks: list[asyncio.Task[None]] = []
    checkpointer: Checkpointer | None = None

    if general.retention_days:
        days = general.retention_days
        archive = general.retention_archive_dir

        def prune() -> None:
            result = prune_request_log(db_path, days, archive_dir=archive, should_stop=halt.is_set)
            if result.deleted:
                log.info("retention: pruned %d rows older than %d days (before %s)%s",
                         result.deleted, days, result.cutoff,
                         f", archived to {archive}" if archive else "")

        log.info("retention: keeping %d days of request log, checking every %gs",
                 days, general.retention_interval)
        tasks.append(asyncio.create_task(
            _every(general.retention_interval, stopping, prune, "retention prune", first=True)))

    if general.wal_checkpoint_interval > 0:
        checkpointer = Checkpointer(db_path)
        tasks.append(asyncio.create_task(
            _every(general.wal_checkpoint_interval, stopping, checkpointer.run_once, "WAL checkpoint")))
    yield
    stopping.set()
    halt.set()
    await asyncio.gather(*tasks)
    if checkpointer is not None:
        checkpointer.close()


async def _every(
    interval: float, stopping: asyncio.Event, job: Callable[[], Any], name: str, *, first: bool = False
) -> None:
    run_now = first
    while True:
        if not run_now:
            try:
                await asyncio.wait_for(stopping.wait(), interval)
                return
            except TimeoutError:
                pass
        run_now = False
        if stopping.is_set():
            return
        try:
            await asyncio.to_thread(job)
        except Exception:
            # Maintenance must never take the gateway down; the next round tries again.
            log.exception("%s failed", name)
