"""Batched metric updates (proxy/server/metrics/batch.py) read exactly as direct ones."""

from __future__ import annotations

import asyncio
import random

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from proxy.server.metrics.batch import Batch, Counts, LastValues, Observations
from proxy.server.metrics.labels import DEFAULT_BUCKETS, LATENCY_BUCKETS


def _pair(buckets):
    direct, batched = CollectorRegistry(), CollectorRegistry()
    made = []
    for registry in (direct, batched):
        made.append((
            Counter("c", "c", ["a", "b"], registry=registry),
            Gauge("g", "g", registry=registry),
            Gauge("last", "last", ["a"], registry=registry),
            Histogram("h", "h", ["a"], buckets=buckets, registry=registry),
        ))
    return direct, batched, made[0], made[1]


def _text(registry):
    # _created samples hold creation times, which differ between the two registries; series
    # come in the order they were first updated, which batching changes (Prometheus does not
    # care), so the lines are compared sorted.
    return sorted(line for line in generate_latest(registry).decode().splitlines() if "_created" not in line)


def test_batched_updates_render_exactly_as_direct_ones():
    rng = random.Random(16)
    for buckets in (LATENCY_BUCKETS, DEFAULT_BUCKETS):
        direct, batched, (c, g, last, h), (bc, bg, blast, bh) = _pair(buckets)
        batch = Batch()
        counts, gauge, lasts, hist = Counts(bc, batch), Counts(bg, batch), LastValues(blast, batch), Observations(bh, batch)
        edges = [b for b in buckets if b != float("inf")]
        values = edges + [0.0, -1.0, 1e9, float("inf"), float("nan")] + [rng.random() * 3 for _ in range(500)]
        for i, value in enumerate(values):
            labels = ("x" if i % 3 else "y", str(i % 2))
            amount = rng.choice([1, 2.5, 0])
            c.labels(*labels).inc(amount)
            counts.inc(labels, amount)
            g.inc(1) if i % 2 else g.dec(1)
            gauge.inc((), 1.0 if i % 2 else -1.0)
            last.labels(labels[0]).set(value if value == value else 0)
            lasts.set((labels[0],), value if value == value else 0)
            h.labels(labels[0]).observe(value)
            hist.observe((labels[0],), value)
            if i % 97 == 0:  # scrapes in between apply what is pending
                batch.apply()
        batch.apply()
        assert _text(batched) == _text(direct)
        assert not batch.dirty


def test_eager_batches_apply_at_the_end_of_the_loop_iteration():
    registry = CollectorRegistry()
    counter = Counter("n", "n", ["a"], registry=registry)
    batch = Batch()
    batch.eager = True
    counts = Counts(counter, batch)

    async def go():
        counts.inc(("x",))
        counts.inc(("x",), 2)
        assert counter.labels("x")._value.get() == 0  # pending until the iteration ends
        await asyncio.sleep(0)
        return counter.labels("x")._value.get()

    assert asyncio.run(go()) == 3


def test_the_request_tally_counts_as_one_update_per_request_did():
    """RequestTally (tally.py) against requests.py's former one-by-one updates, on varied
    requests: the same series, created on the same conditions, the same values."""
    from types import SimpleNamespace

    from proxy.server.metrics.labels import exception_class
    from proxy.server.metrics.tally import RequestTally

    names = {"total": 9, "failed": 10, "requests": 7, "api_failed": 7, "spend": 7, "total_tokens": 8,
             "total_tokens_v1": 8, "input_tokens": 8, "output_tokens": 8, "cached_tokens": 8,
             "cache_read_tokens": 8, "reasoning_tokens": 8}
    histograms = {"total_latency": 6, "api_latency": 6, "ttft": 6, "overhead": 7}

    def build(registry):
        made = {n: Counter(n, n, [f"l{i}" for i in range(k)], registry=registry) for n, k in names.items()}
        made.update({n: Histogram(n, n, [f"l{i}" for i in range(k)], buckets=LATENCY_BUCKETS, registry=registry)
                     for n, k in histograms.items()})
        return made

    direct_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    direct, batched = build(direct_registry), build(batched_registry)
    batch = Batch()
    wrapped = {n: (Observations(m, batch) if n in histograms else Counts(m, batch)) for n, m in batched.items()}
    tally = RequestTally(SimpleNamespace(**wrapped), batch, wrapped["total_latency"].bounds)
    rng = random.Random(12)
    for i in range(600):
        who = ("", f"k{i % 3}", "alias", "", "", "u" if i % 5 else "")
        requested, model, route = "gpt", f"openai/m{i % 2}", "/v1/chat/completions"
        status = rng.choice([200, 200, 200, 429, 500, 499])
        error_type = "budget_exceeded" if status == 429 and i % 2 else None
        admitted = status != 429
        timed = rng.random() < 0.8
        place = ("gpt", "openai", "http://x", model, "id") if timed and i % 7 else None
        tokens = rng.choice([0, 3, 10])
        rec = SimpleNamespace(
            cost=rng.choice([0.0, 0.5, 0.125]), total_tokens=tokens, prompt_tokens=tokens // 2,
            completion_tokens=tokens - tokens // 2, cached_tokens=rng.choice([0, 1]) if tokens else 0,
            reasoning_tokens=rng.choice([0, 2]) if tokens else 0,
            latency=rng.randrange(1, 4096) / 1024, upstream_latency=rng.randrange(0, 1024) / 1024 if timed else None,
            time_to_first_token=rng.choice([None, 0.25, 3.0]),
        )
        kind = exception_class(status, error_type) if status >= 400 else None
        tally.add((who, requested, model, status, route, kind, admitted, timed, place), rec)
        # requests.py's former updates, straight into prometheus-client:
        d = direct
        d["total"].labels(*who, requested, str(status), route).inc()
        d["requests"].labels(*who, model).inc()
        if status >= 400:
            d["failed"].labels(*who, requested, str(status), kind, route).inc()
            if admitted:
                d["api_failed"].labels(*who, model).inc()
        if rec.cost:
            d["spend"].labels(*who, model).inc(rec.cost)
        if rec.total_tokens:
            labels = (*who, model, requested)
            d["total_tokens"].labels(*labels).inc(rec.total_tokens)
            d["total_tokens_v1"].labels(*labels).inc(rec.total_tokens)
            d["input_tokens"].labels(*labels).inc(rec.prompt_tokens)
            d["output_tokens"].labels(*labels).inc(rec.completion_tokens)
            if rec.cached_tokens:
                d["cached_tokens"].labels(*labels).inc(rec.cached_tokens)
                d["cache_read_tokens"].labels(*labels).inc(rec.cached_tokens)
            if rec.reasoning_tokens:
                d["reasoning_tokens"].labels(*labels).inc(rec.reasoning_tokens)
        if rec.upstream_latency is not None:
            key = (requested, model, *who[1:5])
            d["total_latency"].labels(*key).observe(rec.latency)
            d["api_latency"].labels(*key).observe(rec.upstream_latency)
            if rec.time_to_first_token is not None:
                d["ttft"].labels(*key).observe(rec.time_to_first_token)
            if place is not None:
                d["overhead"].labels(*place, who[1], who[2]).observe(max(0.0, rec.latency - rec.upstream_latency))
        if i % 151 == 0:
            batch.apply()
    batch.apply()
    assert _text(batched_registry) == _text(direct_registry)
