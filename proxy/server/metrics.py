"""GET /metrics: Prometheus counters and histograms of every logged request.

Names follow LiteLLM's Prometheus integration where it has one, so its Grafana dashboards work.
Each app owns a CollectorRegistry (never prometheus-client's global one), so several gateways
in one process (tests) keep separate counts. Labels are bounded: `model` is a configured
model_name (anything else a client sends is counted as "other"), `api_key_alias` comes from
keys the admin created, `status_code` is an HTTP status. No prompt, user id or error text
ever becomes a label.

The hot path is one `complete()` per request: a dict lookup for the label children, then a
handful of increments (a few microseconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from ..errors import PermissionDenied
from ..state import AUTH, CONFIG, HOOKS, ROUTER, WRITER
from .auth import bearer_token
from .budgetview import snapshot_sync

if TYPE_CHECKING:
    from ..accounting.exchange import Exchange
    from ..logdb.record import RequestRecord

OTHER_MODEL = "other"  # a model name that is not configured: client text, never a label value
_IN_FLIGHT = "metrics.in_flight"

# LiteLLM's latency buckets (seconds), so dashboards built for it read the same histograms.
LATENCY_BUCKETS = (
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
    5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0,
    120.0, 180.0, 240.0, 300.0, float("inf"),
)
# The gateway's own time is milliseconds: finer buckets at the low end.
OVERHEAD_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"),
)

METRICS: web.AppKey[GatewayMetrics] = web.AppKey("metrics")


class GatewayMetrics:
    """The gateway's metrics in one registry; also the RequestHook that feeds them."""

    def __init__(self, model_names: Iterable[str], app: web.Application | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.models = frozenset(model_names)
        r = self.registry
        key = ["model", "api_key_alias"]
        self.requests = Counter(
            "litellm_requests_metric", "LLM requests logged, by model, key alias and HTTP status.",
            [*key, "status_code"], registry=r,
        )
        self.failed = Counter(
            "litellm_proxy_failed_requests_metric",
            "Requests that ended with an HTTP status >= 400, by error class.",
            [*key, "exception_status", "exception_class"], registry=r,
        )
        self.spend = Counter("litellm_spend_metric", "Spend in USD.", key, registry=r)
        self.total_tokens = Counter(
            "litellm_total_tokens_metric", "Input + output tokens.", key, registry=r
        )
        self.input_tokens = Counter(
            "litellm_input_tokens_metric", "Input (prompt) tokens.", key, registry=r
        )
        self.output_tokens = Counter(
            "litellm_output_tokens_metric", "Output (completion) tokens.", key, registry=r
        )
        self.total_latency = Histogram(
            "litellm_request_total_latency_metric",
            "Seconds from request received to last byte sent.",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.api_latency = Histogram(
            "litellm_llm_api_latency_metric",
            "Seconds spent waiting on the upstream provider.",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "litellm_llm_api_time_to_first_token_metric",
            "Seconds to the first streamed token (streams only).",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.overhead = Histogram(
            "litellm_overhead_latency_metric",
            "Seconds the gateway itself added: total latency minus upstream latency.",
            ["model"], buckets=OVERHEAD_BUCKETS, registry=r,
        )
        self.in_flight = Gauge(
            "shin_in_flight_requests", "Admitted LLM requests not yet finished.", registry=r
        )
        if app is not None:
            r.register(_BudgetCollector(app))
            r.register(_WriterCollector(app))
            r.register(_RouterCollector(app))
        self._children: dict[tuple[str, str, int], tuple] = {}
        self._by_model: dict[str, tuple] = {}

    # -- RequestHook ----------------------------------------------------------------------
    async def admit(self, exchange: Exchange) -> None:
        exchange.hook_state[_IN_FLIGHT] = True
        self.in_flight.inc()

    def complete(self, exchange: Exchange, record: RequestRecord) -> None:
        if exchange.hook_state.pop(_IN_FLIGHT, False):
            self.in_flight.dec()
        self.observe(record)

    # -- recording ------------------------------------------------------------------------
    def observe(self, record: RequestRecord) -> None:
        model = record.model if record.model in self.models else OTHER_MODEL
        alias = record.key_alias or ""
        status = record.status_code
        children = self._children.get((model, alias, status))
        if children is None:
            children = self._children[(model, alias, status)] = (
                self.requests.labels(model, alias, str(status)),
                self.spend.labels(model, alias),
                self.total_tokens.labels(model, alias),
                self.input_tokens.labels(model, alias),
                self.output_tokens.labels(model, alias),
            )
        requests, spend, total, prompt, completion = children
        requests.inc()
        if record.cost:
            spend.inc(record.cost)
        if record.total_tokens:
            total.inc(record.total_tokens)
            prompt.inc(record.prompt_tokens)
            completion.inc(record.completion_tokens)
        if status >= 400:
            self.failed.labels(model, alias, str(status), record.error_type or "unknown").inc()

        per_model = self._by_model.get(model)
        if per_model is None:
            per_model = self._by_model[model] = (
                self.total_latency.labels(model),
                self.api_latency.labels(model),
                self.ttft.labels(model),
                self.overhead.labels(model),
            )
        total_latency, api_latency, ttft, overhead = per_model
        total_latency.observe(record.latency)
        if record.upstream_latency is not None:
            api_latency.observe(record.upstream_latency)
            overhead.observe(max(0.0, record.latency - record.upstream_latency))
        if record.time_to_first_token is not None:
            ttft.observe(record.time_to_first_token)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _BudgetCollector:
    """Budgets read at scrape time from the keys service (absent: no samples)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = ["hashed_api_key", "api_key_alias"]
        remaining = GaugeMetricFamily(
            "litellm_remaining_api_key_budget_metric",
            "USD left in the key's budget for the current period.", labels=labels,
        )
        maximum = GaugeMetricFamily(
            "litellm_api_key_max_budget_metric", "The key's budget in USD per period.",
            labels=labels,
        )
        gateway = GaugeMetricFamily(
            "shin_remaining_gateway_budget_metric",
            "USD left in the gateway-wide budget (litellm_settings.max_budget).",
        )
        for budget in snapshot_sync(self.app):
            if budget.scope == "gateway":
                gateway.add_metric([], budget.remaining)
                continue
            values = [budget.key_hash or "", budget.key_alias or ""]
            remaining.add_metric(values, budget.remaining)
            maximum.add_metric(values, budget.max_budget)
        yield remaining
        yield maximum
        if gateway.samples:
            yield gateway


class _WriterCollector:
    """The request log's state (LogWriter.status()): a growing backlog means SQLite cannot
    keep up; spilled rows mean it refused writes (docs/operations.md)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        writer = self.app.get(WRITER)
        if writer is None:
            return
        status = writer.status()
        backlog = GaugeMetricFamily("shin_request_log_backlog", "Rows queued, not yet committed or spilled.")
        backlog.add_metric([], status.backlog)
        degraded = GaugeMetricFamily(
            "shin_request_log_degraded", "1 while the request log is degraded (see /health)."
        )
        degraded.add_metric([], int(status.degraded))
        pending = GaugeMetricFamily(
            "shin_request_log_spill_pending", "Rows in the spill file waiting to be replayed."
        )
        pending.add_metric([], status.spilled_pending)
        counters = (
            ("written", "Rows committed (live and replayed).", status.rows_written),
            ("spilled", "Rows written to the spill file because the database refused them.", status.rows_spilled),
            ("replayed", "Rows committed from the spill file.", status.rows_replayed),
            ("refused", "Rows SQLite refused outright, kept in the refused file.", status.rows_refused),
            ("failed", "Rows neither committed nor spilled (lost; only ever at exit).", status.rows_lost),
        )
        yield from (backlog, degraded, pending)
        for name, help_text, value in counters:
            counter = CounterMetricFamily(f"shin_request_log_rows_{name}", help_text)
            counter.add_metric([], value)
            yield counter


class _RouterCollector:
    """Deployment cooldowns, read at scrape time from the router's own counters (LiteLLM's
    `litellm_deployment_cooled_down`, same labels)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        router = self.app.get(ROUTER)
        if router is None:
            return
        cooled = CounterMetricFamily(
            "litellm_deployment_cooled_down",
            "Times a deployment was put in cooldown after repeated failures, by the failure "
            "that tipped it (status code, timeout or unreachable).",
            labels=["litellm_model_name", "model_id", "api_base", "api_provider", "exception_status"],
        )
        for s in router.stats():
            for reason, count in sorted(s.cooldowns.items()):
                cooled.add_metric([s.model, s.deployment_id, s.api_base, s.provider, reason], count)
        yield cooled


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
    metrics = GatewayMetrics(app[CONFIG].model_names, app)
    app[METRICS] = metrics
    app[HOOKS].append(metrics)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/metrics/", metrics_handler)  # LiteLLM's docs scrape "/metrics/"
