"""Per-request metric updates gathered in plain dicts, handed to prometheus-client in one go.

An update through prometheus-client costs three Python calls and a lock (an observation one
more per bucket scanned); a request made ~27 of them (~60 µs, a seventh of the gateway's work
on the event loop, BENCHMARKS.md). Here an update is a dict operation on the event loop, keyed
by the label values; `Batch.apply()` adds the sums to prometheus-client's children before
anything reads them:
- before every /metrics render (`GatewayMetrics.render`), so a scrape sees exactly what
  direct updates would have shown;
- under `serve --workers N`, where a scrape of another worker reads this worker's
  multiprocess files, at the end of the event-loop iteration that made them (`eager`).
What is pending is bounded like the series themselves: one entry per label combination.
Everything here runs on the event loop, so nothing needs a lock.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Any


class Batch:
    """The metrics with pending updates; `apply()` flushes them all."""

    def __init__(self) -> None:
        self.dirty: list[Any] = []
        #: Apply at the end of each loop iteration with updates (several processes read them).
        self.eager = False
        self._scheduled = False

    def mark(self, pending: Any) -> None:
        self.dirty.append(pending)
        if self.eager and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.apply)

    def apply(self) -> None:
        self._scheduled = False
        dirty, self.dirty = self.dirty, []
        for pending in dirty:
            pending.apply()


class _Pending:
    __slots__ = ("metric", "batch", "_children", "_pending")

    def __init__(self, metric: Any, batch: Batch) -> None:
        self.metric = metric
        self.batch = batch
        self._children: dict[tuple[str, ...], Any] = {}
        self._pending: dict[tuple[str, ...], Any] = {}

    def child(self, values: tuple[str, ...]) -> Any:
        """prometheus-client's child for `values` (its `.labels()` validates and locks)."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values) if values else self.metric
        return child

    def _take(self) -> list[tuple[tuple[str, ...], Any]]:
        items = list(self._pending.items())
        self._pending.clear()
        return items


class Counts(_Pending):
    """A counter (or a gauge moved up and down): amounts added per label values."""

    __slots__ = ()

    def inc(self, values: tuple[str, ...], amount: float = 1.0) -> None:
        pending = self._pending
        if not pending:
            self.batch.mark(self)
        pending[values] = pending.get(values, 0.0) + amount

    def apply(self) -> None:
        for values, amount in self._take():
            self.child(values).inc(amount)


class LastValues(_Pending):
    """A gauge set per label values: the last value set wins."""

    __slots__ = ()

    def set(self, values: tuple[str, ...], value: float) -> None:
        pending = self._pending
        if not pending:
            self.batch.mark(self)
        pending[values] = value

    def apply(self) -> None:
        for values, value in self._take():
            self.child(values).set(value)


class Observations(_Pending):
    """A histogram: per label values the sum of what was observed and a count per bucket,
    the bucket found as prometheus-client finds it (the first upper bound >= the value)."""

    __slots__ = ("bounds",)

    def __init__(self, metric: Any, batch: Batch) -> None:
        super().__init__(metric, batch)
        self.bounds: list[float] = list(metric._upper_bounds)

    def observe(self, values: tuple[str, ...], value: float) -> None:
        pending = self._pending
        entry = pending.get(values)
        if entry is None:
            if not pending:
                self.batch.mark(self)
            entry = pending[values] = [0.0] * (len(self.bounds) + 1)
        entry[0] += value
        if value == value:  # NaN falls in no bucket, as in Histogram.observe
            entry[1 + bisect_left(self.bounds, value)] += 1

    def apply(self) -> None:
        for values, entry in self._take():
            self.add(values, entry, 0)

    def add(self, values: tuple[str, ...], entry: list[float], at: int) -> None:
        """Add observations to the child now: their sum at entry[at], then the count per
        bucket (Histogram.observe's own steps, its sum and one bucket, a bucket at a time)."""
        child = self.child(values)
        child._sum.inc(entry[at])
        buckets = child._buckets
        at += 1
        for i in range(len(buckets)):
            count = entry[at + i]
            if count:
                buckets[i].inc(count)
