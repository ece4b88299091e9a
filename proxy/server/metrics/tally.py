"""The per-request counters and histograms of requests.py, summed per label combination.

A request's labels (who asked, the model asked for and routed to, the status, the route, the
deployment) are nearly always those of many requests before it. Rather than a dozen updates
a request (batch.py's Counts and Observations, a dict operation each), each request adds its
figures to one list kept for its combination of labels, and `apply()` turns each list into
the updates requests.py made one by one: the same series, created on the same conditions
(spend only when a request cost something, cached tokens only when there were some, …), the
same counts per bucket. Sums of floats are added in another order, so they may differ from
one-by-one adding in the last bit.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from .batch import Batch

if TYPE_CHECKING:
    from ...logdb.record import RequestRecord

# Positions in a combination's list: counts and sums, then four histograms, each as
# [observations, sum, count per bucket...].
N, COSTED, COST, TOKENED, TOTAL, PROMPT, COMPLETION, CACHED_N, CACHED, REASONING_N, REASONING = range(11)
HISTOGRAMS = ("total_latency", "api_latency", "ttft", "overhead")

#: (who, requested, model, status, route, exception class or None, admitted, reached an
#: upstream, (model_group, provider, api_base, model, model_id) of the deployment or None)
Labels = tuple[tuple[str, ...], str, str, int, str, "str | None", bool, bool, "tuple[str, ...] | None"]


class RequestTally:
    def __init__(self, metrics: Any, batch: Batch, bounds: list[float]) -> None:
        self.metrics = metrics  # requests.RequestMetrics: its Counts and Observations
        self.batch = batch
        self.bounds = bounds
        self.span = len(bounds) + 2
        self.base = [11 + i * self.span for i in range(len(HISTOGRAMS))]
        self.width = 11 + len(HISTOGRAMS) * self.span
        self._pending: dict[Labels, list[float]] = {}

    def add(self, labels: Labels, record: RequestRecord) -> None:
        pending = self._pending
        acc = pending.get(labels)
        if acc is None:
            if not pending:
                self.batch.mark(self)
            acc = pending[labels] = [0.0] * self.width
        acc[N] += 1
        cost = record.cost
        if cost:
            acc[COSTED] += 1
            acc[COST] += cost
        tokens = record.total_tokens
        if tokens:
            acc[TOKENED] += 1
            acc[TOTAL] += tokens
            acc[PROMPT] += record.prompt_tokens
            acc[COMPLETION] += record.completion_tokens
            if record.cached_tokens:
                acc[CACHED_N] += 1
                acc[CACHED] += record.cached_tokens
            if record.reasoning_tokens:
                acc[REASONING_N] += 1
                acc[REASONING] += record.reasoning_tokens
        if labels[7]:  # it reached an upstream: time it
            upstream, latency = record.upstream_latency, record.latency
            total, api, ttft, overhead = self.base
            self._observe(acc, total, latency)
            self._observe(acc, api, upstream)
            if record.time_to_first_token is not None:
                self._observe(acc, ttft, record.time_to_first_token)
            if labels[8] is not None:
                self._observe(acc, overhead, max(0.0, latency - upstream))

    def _observe(self, acc: list[float], at: int, value: float) -> None:
        acc[at] += 1
        acc[at + 1] += value
        if value == value:  # NaN falls in no bucket, as in Histogram.observe
            acc[at + 2 + bisect_left(self.bounds, value)] += 1

    def apply(self) -> None:
        items = list(self._pending.items())
        self._pending.clear()
        m = self.metrics
        for (who, requested, model, status, route, kind, admitted, timed, place), acc in items:
            n, code = acc[N], str(status)
            by_model = (*who, model)
            m.total.child((*who, requested, code, route)).inc(n)
            m.requests.child(by_model).inc(n)
            if kind is not None:
                m.failed.child((*who, requested, code, kind, route)).inc(n)
                if admitted:
                    m.api_failed.child(by_model).inc(n)
            if acc[COSTED]:
                m.spend.child(by_model).inc(acc[COST])
            if acc[TOKENED]:
                labels = (*by_model, requested)
                m.total_tokens.child(labels).inc(acc[TOTAL])
                m.total_tokens_v1.child(labels).inc(acc[TOTAL])
                m.input_tokens.child(labels).inc(acc[PROMPT])
                m.output_tokens.child(labels).inc(acc[COMPLETION])
                if acc[CACHED_N]:
                    m.cached_tokens.child(labels).inc(acc[CACHED])
                    m.cache_read_tokens.child(labels).inc(acc[CACHED])
                if acc[REASONING_N]:
                    m.reasoning_tokens.child(labels).inc(acc[REASONING])
            if not timed:
                continue
            key = (requested, model, *who[1:5])
            total, api, ttft, overhead = self.base
            m.total_latency.add(key, acc, total + 1)
            m.api_latency.add(key, acc, api + 1)
            if acc[ttft]:
                m.ttft.add(key, acc, ttft + 1)
            if place is not None and acc[overhead]:
                m.overhead.add((*place, who[1], who[2]), acc, overhead + 1)
