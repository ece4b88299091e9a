"""Off the request path: a bounded queue fed by `complete()`, drained by one background task.

`complete()` only appends a small Event to a deque (dropping, and counting, when it is full);
every `callback_batch_seconds` the task moves queued events into each channel's Batch, checks
budgets, and hands each non-empty batch whose channel has a token left to a delivery task of
its own (so a dead or slow webhook delays nothing but its own next message). Delivery retries
with backoff; a message that still fails is logged and dropped. No callback error can reach a
request: the worst a dead webhook costs a request is one deque append.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from ..errors import CLIENT_CLOSED
from ..server.budgetview import Budget
from .batch import BUDGET, FAILURE, SLOW, SUCCESS, UNKNOWN_MODEL, Batch, Event, short_error
from .budgets import BudgetWatcher
from .webhook import DeliveryFailed

if TYPE_CHECKING:
    from ..accounting.exchange import Exchange
    from ..logdb.record import RequestRecord

log = logging.getLogger("proxy.callbacks")



class Channel(Protocol):
    name: str
    burst: int
    per_minute: float  # 0: no limit beyond one message per batch window

    def render(self, batch: Batch, title: str) -> dict[str, Any]: ...

    async def deliver(self, session: aiohttp.ClientSession, payload: dict[str, Any], **retry: Any) -> None: ...


@dataclass
class Subscription:
    channel: Channel
    kinds: set[str]
    batch: Batch = field(default_factory=Batch)
    tokens: float = 0.0
    refilled: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.tokens = float(self.channel.burst)

    def take_token(self, now: float) -> bool:
        rate = self.channel.per_minute / 60.0
        if rate <= 0:
            return True
        self.tokens = min(float(self.channel.burst), self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


BudgetSource = Callable[[], Awaitable[list[Budget] | None]]


class Dispatcher:
    """The RequestHook that feeds the queue, and the task that empties it."""

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        *,
        title: str,
        model_names: Sequence[str],
        batch_seconds: float,
        slow_threshold: float | None = None,
        budget_source: BudgetSource | None = None,
        max_queue: int = 10_000,
    ) -> None:
        self.subscriptions = list(subscriptions)
        self.title = title
        self.models = frozenset(model_names)
        self.batch_seconds = batch_seconds
        self.slow_threshold = slow_threshold
        self.budget_source = budget_source
        self.watcher = BudgetWatcher()
        self.queue: deque[Event] = deque()
        self.max_queue = max_queue
        self.lost = 0
        self.attempts = 4
        self.backoff = 0.5
        self.shutdown_timeout = 5.0
        self.delivered = 0
        self.failed = 0
        self.failed_by_channel: Counter[str] = Counter()  # /metrics: litellm_callback_logging_failures_metric
        kinds = set().union(*(s.kinds for s in self.subscriptions)) if self.subscriptions else set()
        self._failures = FAILURE in kinds
        self._successes = SUCCESS in kinds
        self._slow = SLOW in kinds and slow_threshold is not None

    # -- RequestHook (on the event loop, per request: keep it tiny) -----------------------
    async def admit(self, exchange: Exchange) -> None:
        return None

    def complete(self, exchange: Exchange, record: RequestRecord) -> None:
        status = record.status_code
        if status >= 400:
            if self._failures and status != CLIENT_CLOSED:
                self._push(FAILURE, exchange, record)
        elif self._successes:
            self._push(SUCCESS, exchange, record)
        if self._slow and record.latency > self.slow_threshold:  # type: ignore[operator]
            self._push(SLOW, exchange, record)

    def _push(self, kind: str, exchange: Exchange, record: RequestRecord) -> None:
        if len(self.queue) >= self.max_queue:
            self.lost += 1
            return
        self.queue.append(Event(
            kind=kind,
            at=exchange.started_wall,
            request_id=record.request_id,
            model=record.model if record.model in self.models else UNKNOWN_MODEL,
            status=record.status_code,
            key_alias=record.key_alias,
            latency=record.latency,
            cost=record.cost,
            total_tokens=record.total_tokens,
            error_type=record.error_type if kind == FAILURE else None,
            error=short_error(exchange.error_message) if kind == FAILURE else None,
        ))

    # -- the background task ----------------------------------------------------------------
    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            await asyncio.sleep(self.batch_seconds)
            try:
                await self.tick(session)
            except Exception:  # the loop must survive anything: it is the only sender
                log.exception("callback dispatcher tick failed")

    async def tick(self, session: aiohttp.ClientSession, *, final: bool = False) -> None:
        self._drain()
        await self.check_budgets()
        now = time.monotonic()
        for sub in self.subscriptions:
            if sub.batch.empty or sub.busy:
                continue
            if not final and not sub.take_token(now):
                continue  # rate-limited: the batch keeps growing and goes out later
            batch, sub.batch = sub.batch, Batch()
            payload = sub.channel.render(batch, self.title)
            sub.task = asyncio.create_task(self._deliver(sub.channel, payload, final=final))

    def _drain(self) -> None:
        queue = self.queue
        subs = self.subscriptions
        while queue:
            event = queue.popleft()
            for sub in subs:
                if event.kind in sub.kinds:
                    sub.batch.add(event)
        if self.lost:
            lost, self.lost = self.lost, 0
            log.warning("callbacks: %d events dropped, the queue was full", lost)
            for sub in subs:
                if sub.kinds & {FAILURE, SUCCESS, SLOW}:
                    sub.batch.lost += lost

    async def check_budgets(self) -> None:
        if not any(BUDGET in s.kinds for s in self.subscriptions):
            return
        budgets = (await self.budget_source() if self.budget_source else None) or []
        for alert in self.watcher.check(budgets):
            for sub in self.subscriptions:
                if BUDGET in sub.kinds:
                    sub.batch.budgets.append(alert)

    async def _deliver(self, channel: Channel, payload: dict[str, Any], *, final: bool) -> None:
        try:
            await channel.deliver(
                self._session, payload,
                attempts=1 if final else self.attempts, backoff=self.backoff,
            )
            self.delivered += 1
        except DeliveryFailed as exc:
            self.failed += 1
            self.failed_by_channel[channel.name] += 1
            log.warning("callback message lost: %s", exc)
        except Exception:
            self.failed += 1
            self.failed_by_channel[channel.name] += 1
            log.exception("callback %s failed", channel.name)

    # -- lifecycle ----------------------------------------------------------------------------
    _session: aiohttp.ClientSession

    async def start(self, session: aiohttp.ClientSession) -> asyncio.Task[None]:
        self._session = session
        await self.check_budgets()  # learn where budgets stand, so a restart does not re-alert
        return asyncio.create_task(self.run(session), name="callback-dispatcher")

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Send what is pending (one attempt each), waiting at most `shutdown_timeout`."""
        task.cancel()
        deadline = time.monotonic() + self.shutdown_timeout
        await self._wait([s.task for s in self.subscriptions if s.busy], deadline)
        try:
            await self.tick(self._session, final=True)
        except Exception:
            log.exception("callback final flush failed")
        await self._wait([s.task for s in self.subscriptions if s.busy], deadline)

    @staticmethod
    async def _wait(tasks: list[asyncio.Task[None] | None], deadline: float) -> None:
        pending = [t for t in tasks if t is not None]
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        for t in still:
            t.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
            log.warning("callbacks: %d message(s) abandoned at shutdown", len(still))
