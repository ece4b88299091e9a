"""/metrics under `serve --workers N`: every worker's counts, whichever worker is scraped.

The supervisor points PROMETHEUS_MULTIPROC_DIR at a fresh directory of its run directory
before a worker starts, so every prometheus-client metric of a worker (requests, tokens,
spend, latencies, in flight) lives in memory-mapped files there, one set per process.
A scrape reads them all (MultiProcessCollector): counters and histograms are summed, and a dead
worker's counts stay in the totals; gauges say how in their multiprocess_mode (in flight:
`livesum` — the supervisor calls `mark_process_dead` for a worker that exits, so its live
gauges drop out; the upstreams' rate-limit headers: `mostrecent`).

Scrape-time collectors read state the answering process holds. Each family decides:
- COMBINED (per-worker state: each worker's request-log writer, HTTP requests in flight,
  callback failures, router): every worker copies its values into its own files every
  MIRROR_INTERVAL seconds and just before it answers a scrape, so they are summed (or maxed)
  like the rest — at most MIRROR_INTERVAL old for the other workers;
- everything else is answered by the worker scraped, because every worker has the same:
  budgets and user/team counts (keys.db, re-read every 0.5 s), rate-limit use (the workers'
  shared counter, admin/store/sqlite_limits.py), the configured deployments' rpm/tpm.
Label values a metric bounds (metrics_label_values) are bounded per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger("proxy.metrics")

COUNTER = "counter"
#: Scrape-time families combined over the workers: COUNTER (summed, a dead worker's count
#: kept) or a gauge's multiprocess mode.
COMBINED: dict[str, str] = {
    # each worker's request-log writer (server/metrics/collectors.py WriterCollector)
    "shin_request_log_backlog": "livesum",
    "shin_request_log_spill_pending": "livesum",
    "shin_request_log_degraded": "livemax",
    "shin_request_log_rows_written": COUNTER,
    "shin_request_log_rows_spilled": COUNTER,
    "shin_request_log_rows_replayed": COUNTER,
    "shin_request_log_rows_refused": COUNTER,
    "shin_request_log_rows_failed": COUNTER,
    # each worker's HTTP requests and callback dispatcher (InFlightCollector, CallbackCollector)
    "litellm_in_flight_requests": "livesum",
    "litellm_callback_logging_failures_metric": COUNTER,
    # each worker's router (deployments.py RouterCollector): the worst state any worker sees
    "litellm_deployment_state": "livemax",
    "litellm_deployment_cooled_down": COUNTER,
}
MIRROR_INTERVAL = 1.0


class AllWorkers:
    """The registry a worker serves at /metrics (anything with `collect()` will do for
    prometheus-client's `generate_latest`)."""

    def __init__(self, registry: Any, collectors: Iterable[Any], path: str | Path) -> None:
        self.registry = registry  # this worker's own registry: its metrics and collectors
        self.collectors = list(collectors)  # the scrape-time ones that have COMBINED families
        self.path = str(path)
        self._mirrors: dict[str, Any] = {}
        self._seen: dict[tuple[str, tuple[str, ...]], float] = {}

    def collect(self) -> Iterator[Metric]:
        self.mirror()
        shared = list(MultiProcessCollector(None, self.path).collect())
        names = {m.name for m in shared}
        yield from shared
        for metric in self.registry.collect():
            # This worker's own copies of what the files already hold are left out.
            if metric.name not in names and metric.name not in COMBINED:
                yield metric

    def mirror(self) -> None:
        """Copy this worker's COMBINED values into its files."""
        for collector in list(self.collectors):
            families = list(collector.collect())
            if families and not any(f.name in COMBINED for f in families):
                self.collectors.remove(collector)  # e.g. budgets: nothing to copy, ever
            for family in families:
                mode = COMBINED.get(family.name)
                if mode is None:
                    continue
                for sample in family.samples:
                    if mode == COUNTER and not sample.name.endswith("_total"):
                        continue  # _created
                    self._copy(family, mode, sample.labels, sample.value)

    def _copy(self, family: Metric, mode: str, labels: dict[str, str], value: float) -> None:
        metric = self._mirrors.get(family.name)
        if metric is None:
            names = list(labels)
            if mode == COUNTER:
                metric = Counter(family.name, family.documentation, names, registry=None)
            else:
                metric = Gauge(family.name, family.documentation, names, registry=None, multiprocess_mode=mode)
            self._mirrors[family.name] = metric
        child = metric.labels(**labels) if labels else metric
        if mode != COUNTER:
            child.set(value)
            return
        key = (family.name, tuple(labels.values()))
        delta = value - self._seen.get(key, 0.0)
        if delta > 0:
            child.inc(delta)
            self._seen[key] = value


def serve_all_workers(app: web.Application, registry: Any, collectors: Iterable[Any], path: Path) -> AllWorkers:
    """What /metrics renders in a worker; keeps the COMBINED copies fresh while it runs."""
    view = AllWorkers(registry, collectors, path)

    async def mirroring(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(MIRROR_INTERVAL)
                try:
                    view.mirror()
                except Exception:
                    log.exception("metrics: copying this worker's figures failed")

        task = asyncio.create_task(loop(), name="metrics-mirror")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        view.mirror()

    app.cleanup_ctx.append(mirroring)
    return view
