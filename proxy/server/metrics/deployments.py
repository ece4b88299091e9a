"""Per-deployment metrics: every upstream call, fallbacks, the upstream's own rate limits, and
each deployment's state, limits and cooldowns read from the router at scrape time.

A request that fails over makes several calls: each counts against its own deployment
(`litellm_deployment_*_responses`), the request itself once (requests.py). A call succeeds when
the deployment answers 2xx; its `exception_status` on failure is the upstream's status,
`timeout` or `unreachable`, as the router counts it towards cooldowns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ...routing.cooldowns import counts_against_deployment
from .batch import Batch, Counts, LastValues, Observations
from .labels import (
    DEFAULT_BUCKETS,
    DEPLOYMENT,
    EXCEPTION,
    KEY,
    BoundedValues,
    DeploymentLabels,
    exception_class,
)

if TYPE_CHECKING:
    from ...accounting.exchange import Exchange
    from ...logdb.record import RequestRecord
    from ...routing.router import Router

HEALTHY, PARTIAL_OUTAGE, OUTAGE = 0, 1, 2
#: The upstream headers LiteLLM turns into gauges, and the gauge names (each under its current
#: name and the one LiteLLM's all-metrics dashboard queries).
_REMAINING = {
    "x-ratelimit-remaining-requests": ("litellm_remaining_requests", "litellm_remaining_requests_metric"),
    "x-ratelimit-remaining-tokens": ("litellm_remaining_tokens", "litellm_remaining_tokens_metric"),
}


class DeploymentMetrics:
    def __init__(self, registry: CollectorRegistry, values: BoundedValues, deployment: DeploymentLabels,
                 batch: Batch) -> None:
        self.values = values
        self.deployment = deployment
        #: Deployment id -> whether its last call failed as a deployment does (for its state).
        self.last_failed: dict[str, bool] = {}

        def counter(name: str, doc: str, labels: list[str]) -> Counts:
            return Counts(Counter(name, doc, labels, registry=registry), batch)

        calls = ["requested_model", *DEPLOYMENT, *KEY]
        self.total = counter(
            "litellm_deployment_total_requests", "Upstream calls per deployment, success + failure.", calls
        )
        self.success = counter(
            "litellm_deployment_success_responses", "Upstream calls a deployment answered 2xx.", calls
        )
        self.failure = counter(
            "litellm_deployment_failure_responses",
            "Upstream calls a deployment failed: exception_status is its status, timeout or unreachable.",
            [*calls, *EXCEPTION],
        )
        self.per_token = Observations(Histogram(
            "litellm_deployment_latency_per_output_token",
            "Seconds of upstream time per output token, for answered requests.",
            [*DEPLOYMENT, *KEY], buckets=DEFAULT_BUCKETS, registry=registry,
        ), batch)
        fallback = ["requested_model", "fallback_model", *KEY, *EXCEPTION]
        self.fallback_ok = counter(
            "litellm_deployment_successful_fallbacks",
            "Requests a fallback model answered after the requested model failed.", fallback,
        )
        self.fallback_failed = counter(
            "litellm_deployment_failed_fallbacks",
            "Fallback models that failed too after the requested model failed.", fallback,
        )
        remaining = ["model_group", "api_provider", "api_base", "litellm_model_name", "model_id"]
        self.remaining: dict[str, list[LastValues]] = {
            header: [
                LastValues(Gauge(name, f"The upstream's {header} header, last seen per deployment.",
                                 remaining, registry=registry,
                                 multiprocess_mode="mostrecent"), batch)  # --workers: whichever saw it last
                for name in names
            ]
            for header, names in _REMAINING.items()
        }

    def complete(self, ex: Exchange, record: RequestRecord, requested: str, key: tuple[str, ...]) -> None:
        for call in ex.calls:
            name, model_id, api_base, provider = labels = self.deployment(call.target)
            values = (requested, *labels, *key)
            self.total.inc(values)
            if call.error is None:
                self.success.inc(values)
                self.last_failed[call.target.deployment_id] = False
                continue
            kind = exception_class(call.error.status, call.error.type)
            self.failure.inc((*values, call.reason, kind))
            if not call.reason.isdigit() or counts_against_deployment(int(call.reason)):
                self.last_failed[call.target.deployment_id] = True
        for tried in ex.fallbacks:
            error = tried.error
            counter = self.fallback_ok if tried.ok else self.fallback_failed
            counter.inc((
                self.values.get("requested_model", tried.group), self.values.get("fallback_model", tried.fallback),
                *key, str(error.status), exception_class(error.status, error.type),
            ))
        target = ex.target
        if target is None or record.status_code >= 400:
            return
        labels = self.deployment(target)
        if record.completion_tokens > 0 and record.upstream_latency is not None:
            self.per_token.observe((*labels, *key), record.upstream_latency / record.completion_tokens)
        if ex.ratelimit:
            name, model_id, api_base, provider = labels
            where = (record.model_group or "", provider, api_base, name, model_id)
            for header, gauges in self.remaining.items():
                value = _number(ex.ratelimit.get(header))
                if value is not None:
                    for gauge in gauges:
                        gauge.set(where, value)


class RouterCollector:
    """Each configured deployment as the router sees it now: state, configured rpm/tpm, and
    cooldowns (counted by the router itself)."""

    def __init__(self, router: Router, metrics: DeploymentMetrics) -> None:
        self.router = router
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = list(DEPLOYMENT)
        state = GaugeMetricFamily(
            "litellm_deployment_state",
            "0 healthy, 1 partial outage (its last call failed), 2 outage (cooling down).",
            labels=labels,
        )
        cooled = CounterMetricFamily(
            "litellm_deployment_cooled_down",
            "Times a deployment was put in cooldown after repeated failures, by the failure "
            "that tipped it (status code, timeout or unreachable).",
            labels=[*labels, "exception_status"],
        )
        rpm = GaugeMetricFamily("litellm_deployment_rpm_limit", "The deployment's rpm in the config.", labels=labels)
        tpm = GaugeMetricFamily("litellm_deployment_tpm_limit", "The deployment's tpm in the config.", labels=labels)
        last_failed = self.metrics.last_failed
        for s in self.router.stats():
            values = [s.model, s.deployment_id, s.api_base, s.provider]
            if s.cooling_down:
                value = OUTAGE
            else:
                value = PARTIAL_OUTAGE if last_failed.get(s.deployment_id) else HEALTHY
            state.add_metric(values, value)
            for reason, count in sorted(s.cooldowns.items()):
                cooled.add_metric([*values, reason], count)
        for target in self.router.deployments():
            params = target.deployment.litellm_params
            values = [params.model, target.deployment_id, target.public_api_base, target.provider]
            if params.rpm is not None:
                rpm.add_metric(values, params.rpm)
            if params.tpm is not None:
                tpm.add_metric(values, params.tpm)
        yield from (state, cooled, rpm, tpm)


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None
