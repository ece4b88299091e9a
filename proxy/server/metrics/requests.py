"""Per-request metrics under LiteLLM's names and labels, fed by one hook call per logged row.

What LiteLLM calls `requested_model` is the name the client asked for; `model` is the model the
request was routed to, as configured (litellm_params.model, e.g. `openai/gpt-4o-mini`).
Histograms time only requests that reached an upstream: a refusal in a millisecond (401, 403,
budget or rate-limit 429) is counted, not timed, so it cannot make the gateway look fast.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..accounts import HASH_PREFIX, Accounts
from .batch import Batch, Counts, Observations
from .labels import (
    KEY,
    LATENCY_BUCKETS,
    OTHER,
    WHO,
    BoundedValues,
    DeploymentLabels,
    exception_class,
)
from .tally import RequestTally

if TYPE_CHECKING:
    from ...accounting.exchange import Exchange
    from ...logdb.record import RequestRecord
    from ...routing.router import Router

#: hook_state entry: the labels of an admitted request (it holds an in-flight slot).
ADMITTED = "metrics.admitted"

_TOKENS_DOC = "tokens from LLM requests, by who asked and the model asked for and routed to."


class RequestMetrics:
    def __init__(
        self, registry: CollectorRegistry, values: BoundedValues, deployment: DeploymentLabels,
        router: Router, accounts: Accounts, batch: Batch, *, end_users: bool = True,
    ) -> None:
        self.values = values
        self.deployment = deployment
        self.router = router
        self.accounts = accounts
        self.end_users = end_users

        def counter(name: str, doc: str, labels: list[str]) -> Counts:
            return Counts(Counter(name, doc, labels, registry=registry), batch)

        def histogram(name: str, doc: str, labels: list[str]) -> Observations:
            return Observations(Histogram(name, doc, labels, buckets=LATENCY_BUCKETS, registry=registry), batch)

        who = list(WHO)
        self.total = counter(
            "litellm_proxy_total_requests_metric",
            "LLM requests made to the gateway, answered or refused, by HTTP status.",
            [*who, "requested_model", "status_code", "route"],
        )
        self.failed = counter(
            "litellm_proxy_failed_requests_metric",
            "LLM requests answered with an HTTP status >= 400, by status and exception class.",
            [*who, "requested_model", "exception_status", "exception_class", "route"],
        )
        self.requests = counter(
            "litellm_requests_metric",
            "Deprecated (use litellm_proxy_total_requests_metric): LLM requests, by routed model.",
            [*who, "model"],
        )
        self.api_failed = counter(
            "litellm_llm_api_failed_requests_metric",
            "Deprecated (use litellm_proxy_failed_requests_metric): admitted requests that failed.",
            [*who, "model"],
        )
        self.spend = counter("litellm_spend_metric", "Spend on LLM requests in USD.", [*who, "model"])
        tokens = [*who, "model", "requested_model"]
        self.total_tokens = counter("litellm_total_tokens_metric", "Input + output " + _TOKENS_DOC, tokens)
        self.total_tokens_v1 = counter(
            "litellm_total_tokens", "Same as litellm_total_tokens_metric (LiteLLM's earlier name).", tokens
        )
        self.input_tokens = counter("litellm_input_tokens_metric", "Input (prompt) " + _TOKENS_DOC, tokens)
        self.output_tokens = counter("litellm_output_tokens_metric", "Output (completion) " + _TOKENS_DOC, tokens)
        self.cached_tokens = counter(
            "litellm_input_cached_tokens_metric",
            "Input tokens the provider served from its prompt cache (prompt_tokens_details.cached_tokens).",
            tokens,
        )
        self.cache_read_tokens = counter(
            "litellm_provider_cache_read_input_tokens_metric",
            "Same as litellm_input_cached_tokens_metric (LiteLLM's name for the same count).",
            tokens,
        )
        self.reasoning_tokens = counter(
            "litellm_output_reasoning_tokens_metric",
            "Reasoning tokens (completion_tokens_details.reasoning_tokens).",
            tokens,
        )
        timed = ["requested_model", "model", *KEY]
        self.total_latency = histogram(
            "litellm_request_total_latency_metric",
            "Seconds from request received to last byte sent, for requests that reached an upstream.",
            timed,
        )
        self.api_latency = histogram(
            "litellm_llm_api_latency_metric",
            "Seconds waiting on the upstream call that answered (or failed last).",
            timed,
        )
        self.ttft = histogram(
            "litellm_llm_api_time_to_first_token_metric",
            "Seconds from request received to the first streamed token (streams only).",
            timed,
        )
        self.overhead = histogram(
            "litellm_overhead_latency_metric",
            "Seconds the gateway itself added: total latency minus the answering upstream call.",
            ["model_group", "api_provider", "api_base", "litellm_model_name", "model_id",
             "hashed_api_key", "api_key_alias"],
        )
        self.queue_time = histogram(
            "litellm_request_queue_time_seconds",
            "Seconds from request received to admitted: body read, auth, checks, budgets and limits.",
            ["requested_model", *KEY],
        )
        self.in_flight = Counts(Gauge(
            "shin_in_flight_requests", "Admitted LLM requests not yet finished.", registry=registry,
            multiprocess_mode="livesum",  # serve --workers N: the running workers' sum
        ), batch)
        #: complete()'s counters and histograms, summed per label combination (tally.py).
        self.tally = RequestTally(self, batch, self.total_latency.bounds)
        values.preset("requested_model", [*router.model_names, *router.aliases])
        values.preset("model", [t.deployment.litellm_params.model for t in router.deployments()])

    # -- RequestHook ------------------------------------------------------------------------
    async def admit(self, ex: Exchange) -> None:
        labels = self.who(ex), self.requested_model(ex)
        ex.hook_state[ADMITTED] = labels  # an admitted request's labels cannot change
        self.in_flight.inc(())
        self.queue_time.observe((labels[1], *labels[0][1:5]), time.perf_counter() - ex.started)

    def complete(self, ex: Exchange, record: RequestRecord) -> tuple[tuple[str, ...], str]:
        """Count `record`; returns its `who` and `requested_model` labels."""
        labels = ex.hook_state.pop(ADMITTED, None)
        admitted = labels is not None
        if admitted:
            self.in_flight.inc((), -1.0)
            who, requested = labels
        else:
            who, requested = self.who(ex), self.requested_model(ex)
        model = self.values.get("model", record.upstream_model)
        status = record.status_code
        kind = exception_class(status, record.error_type) if status >= 400 else None
        timed = record.upstream_latency is not None
        place = None
        if timed and ex.target is not None:
            name, model_id, api_base, provider = self.deployment(ex.target)
            place = (record.model_group or "", provider, api_base, name, model_id)
        self.tally.add((who, requested, model, status, record.endpoint, kind, admitted, timed, place), record)
        return who, requested

    # -- labels -----------------------------------------------------------------------------
    def who(self, ex: Exchange) -> tuple[str, ...]:
        """(end_user, hashed_api_key, api_key_alias, team, team_alias, user), bounded."""
        get = self.values.get
        p = ex.principal
        key_hash = p.key_hash if p else None
        team = p.team_id if p else None
        end_user = None
        if self.end_users and ex.body:
            user = ex.body.get("user")
            end_user = user if isinstance(user, str) else None
        return (
            get("end_user", end_user),
            get("hashed_api_key", key_hash[:HASH_PREFIX] if key_hash else None),
            get("api_key_alias", p.key_alias if p else None),
            get("team", team),
            get("team_alias", self.accounts.team_alias(team) if team else None),
            get("user", p.user_id if p else None),
        )

    def requested_model(self, ex: Exchange) -> str:
        """The name the client asked for, when the gateway serves it; else "other" (a name
        no model answers to is client text, and never becomes a label)."""
        name = ex.model
        if not name:
            return ""
        if ex.model_group is None and self.router.group_of(name) is None:
            return OTHER
        return self.values.get("requested_model", name)
