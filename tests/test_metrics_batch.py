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
    # _created samples hold creation times, which differ between the two registries.
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


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
