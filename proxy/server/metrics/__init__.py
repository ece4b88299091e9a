"""GET /metrics: Prometheus metrics under LiteLLM's names, so its Grafana dashboards work.

- requests.py: one hook call per logged request (counters, histograms, in-flight);
- deployments.py: upstream calls, fallbacks and rate-limit headers per deployment, and the
  router's state at scrape time;
- collectors.py: budgets, the request log and HTTP requests in flight, read at scrape time;
- labels.py: bounded label values, LiteLLM's label names and bucket layouts.

Each app owns a CollectorRegistry (never prometheus-client's global one), so several gateways
in one process (tests) keep separate counts. Labels never hold request text: values from
outside the config are bounded per label (labels.py) and a model name no deployment serves is
counted as "other". docs/metrics-and-alerts.md lists every metric.

With `serve --workers N` each worker counts its own requests in prometheus-client's
multiprocess files and any worker's /metrics adds them all up; proxy/workers/metrics.py says
how each scrape-time collector's per-process state is combined (every gauge here names its
multiprocess_mode).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.exposition import generate_latest

from ...errors import PermissionDenied
from ...state import AUTH, CONFIG, HOOKS, ROUTER, WORKER
from ..accounts import ACCOUNTS, Accounts
from ..auth import bearer_token
from .batch import Batch
from .collectors import AccountsCollector, CallbackCollector, InFlightCollector, WriterCollector
from .deployments import DeploymentMetrics, RouterCollector
from .labels import BoundedValues, DeploymentLabels
from .requests import RequestMetrics

if TYPE_CHECKING:
    from ...accounting.exchange import Exchange
    from ...logdb.record import RequestRecord


class GatewayMetrics:
    """The gateway's metrics in one registry; also the RequestHook that feeds them."""

    def __init__(self, app: web.Application) -> None:
        config = app[CONFIG]
        self.registry = CollectorRegistry(auto_describe=False)
        self.values = BoundedValues(config.general.metrics_label_values)
        deployment = DeploymentLabels(self.values)
        accounts = app[ACCOUNTS]
        router = app[ROUTER]
        #: Per-request updates, applied before anything reads them (batch.py).
        self.batch = Batch()
        self.requests = RequestMetrics(
            self.registry, self.values, deployment, router, accounts, self.batch,
            end_users=not config.litellm.disable_end_user_cost_tracking_prometheus_only,
        )
        self.deployments = DeploymentMetrics(self.registry, self.values, deployment, self.batch)
        #: Read at scrape time (proxy/workers/metrics.py: how N workers combine them).
        self.collectors = (
            AccountsCollector(accounts), WriterCollector(app), InFlightCollector(app), CallbackCollector(app),
            RouterCollector(router, self.deployments),
        )
        for collector in self.collectors:
            self.registry.register(collector)
        #: What /metrics renders: this registry, or every worker's (serve --workers N).
        self.exposed: object = self.registry

    # -- RequestHook ------------------------------------------------------------------------
    async def admit(self, exchange: Exchange) -> None:
        await self.requests.admit(exchange)

    def complete(self, exchange: Exchange, record: RequestRecord) -> None:
        who, requested = self.requests.complete(exchange, record)
        self.deployments.complete(exchange, record, requested, who[1:5])

    def render(self) -> bytes:
        self.batch.apply()
        return generate_latest(self.exposed)  # type: ignore[arg-type]


METRICS: web.AppKey[GatewayMetrics] = web.AppKey("metrics", GatewayMetrics)


async def metrics_handler(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    if config.general.metrics_auth:
        principal = await app[AUTH].authenticate(bearer_token(request))
        if not principal.is_admin:
            raise PermissionDenied("/metrics needs the master key (general_settings.metrics_auth).")
    elif (config.general.require_auth_for_metrics_endpoint
          or config.litellm.require_auth_for_metrics_endpoint):
        # LiteLLM's setting: any valid key, master or virtual.
        await app[AUTH].authenticate(bearer_token(request))
    return web.Response(body=app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application) -> None:
    """Register GET /metrics and the hook that counts requests."""
    app[ACCOUNTS] = Accounts(app)
    metrics = GatewayMetrics(app)
    app[METRICS] = metrics
    worker = app.get(WORKER)
    if worker is not None:
        from ...workers.metrics import serve_all_workers

        metrics.exposed = serve_all_workers(app, metrics.registry, metrics.collectors, worker.metrics_dir)
        metrics.batch.eager = True  # other workers read this one's files when they are scraped
    app[HOOKS].append(metrics)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/metrics/", metrics_handler)  # LiteLLM's docs scrape "/metrics/"
