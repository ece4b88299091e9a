"""The Redis backend as AdminService uses it: the store and ledger (redis_store.py), the rate
counter (redis_limits.py), keys.db as this host's copy (redis_copy.py), and the glue to the
service — pub/sub invalidation, published spend, reconciliation after an outage.

Start-up: Redis answers → a Redis without the gateway's data is seeded from keys.db (a copy, or
this host's keys from before Redis), then loaded; Redis down → keys.db's copy is served and the
link reconciles once Redis answers. Reconciliation, in order: a Redis that lost its data is
seeded again from memory (first host wins; the others add their increments on top), spend
counted meanwhile is added (exactly once), the rate counter pushes its local counts; the
listener's re-subscription then reloads settings and adopts every stored total.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreUnavailable
from ..records import GLOBAL, Ref
from .base import Snapshot
from .codecs import CODECS
from .redis_copy import LocalCopy, has_content, rows_of
from .redis_limits import RedisRateCounter
from .redis_link import CLOSE_TIMEOUT, NETWORK_ERRORS, RedisLink
from .redis_store import RedisStore

if TYPE_CHECKING:
    from ..service import AdminService

log = logging.getLogger("proxy.redis")

GLOBAL_REF = Ref(GLOBAL, GLOBAL)
COPY_INTERVAL = 5.0


class RedisBackend(RedisStore):
    """EntityStore + SpendLedger on Redis, with its RateCounter as `counter`."""

    def __init__(self, url: str, copy_path: str | Path, *, link: RedisLink | None = None) -> None:
        super().__init__(link or RedisLink(url))
        self.copy = LocalCopy(copy_path)
        self.counter = RedisRateCounter(self.link)
        self.service: AdminService | None = None
        self._copy_dirty = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False

    def bind(self, service: AdminService) -> None:
        """Connect to the service whose memory this backend keeps current."""
        self.service = service
        link = self.link
        link.subscribe("changes", lambda _version: self._schedule_reload())
        link.subscribe("spend", self._on_spend)
        link.on_subscribed(self._catch_up)
        link.on_reconnect(self._reconcile)
        link.on_reconnect(self.counter.reconcile)

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> Snapshot:
        snapshot = None
        if await self.link.connect():
            try:
                snapshot = await self._open_shared()
            except NETWORK_ERRORS as exc:
                self.link.failed(exc)
        if snapshot is None:
            local = await asyncio.to_thread(self.copy.read)
            snapshot = local[0] if local is not None else Snapshot()
            log.warning("Redis unreachable at start-up: serving the %d keys of %s until it answers",
                        len(snapshot.records.get("key", [])), self.copy.path)
        self.link.start()
        self._spawn(self._copy_loop())
        return snapshot

    async def _open_shared(self) -> Snapshot:
        if await self.read_dataset() is None:
            local = await asyncio.to_thread(self.copy.read)
            if local is not None and has_content(local[0]):
                written, _ = await self.seed(local[0], "seed")
                await asyncio.to_thread(self.copy.mark)  # its keys are in Redis now
                if written >= 0:
                    log.warning("Redis at %s held no gateway data: seeded from %s (%d records)",
                                self.link.public, self.copy.path, written)
            else:
                await self.seed(Snapshot(), "seed")
        snapshot = await self.load()
        await asyncio.to_thread(self.copy.write_rows, rows_of(snapshot), snapshot.global_budget)
        return snapshot

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a cancellation lost inside a client library never hangs
            await asyncio.wait(list(self._tasks), timeout=CLOSE_TIMEOUT)
        if self.service is not None and self._copy_dirty:
            await self._write_copy()
        await self.link.stop()

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the ledger, noting what the copy must catch up on ----------------------------------
    async def charge(self, charges: Any) -> dict[Ref, tuple[float, float | None]]:
        if charges:
            self._copy_dirty = True
        return await super().charge(charges)

    async def load(self) -> Snapshot:
        snapshot = await super().load()
        self._copy_dirty = True
        return snapshot

    # -- pub/sub ---------------------------------------------------------------------------------
    def _schedule_reload(self) -> None:
        if self.service is None:
            return
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True  # a change published while reloading: once more after
            return
        self._reload_task = self._spawn(self._reload())

    async def _reload(self) -> None:
        assert self.service is not None
        while True:
            self._reload_again = False
            try:
                await self.service.reload_if_changed()
            except StoreUnavailable:
                pass  # the link said so; its reconciliation reloads
            except NETWORK_ERRORS as exc:
                self.link.failed(exc)
            except Exception:
                log.exception("reloading the admin state from Redis failed")
            if not self._reload_again:
                return

    def _on_spend(self, data: str) -> None:
        if self.service is None:
            return
        book = self.service.book
        for f, (spend, reset) in json.loads(data).items():
            kind, _, ident = f.partition(":")
            book.adopt_total(Ref(kind, ident), float(spend), float(reset) if reset else None, only_up=True)

    async def _catch_up(self) -> None:
        """Just (re)subscribed: messages may have been missed."""
        self._schedule_reload()
        if self.service is None:
            return
        try:
            totals = await self.spend_totals()
        except NETWORK_ERRORS as exc:
            self.link.failed(exc)
            return
        for ref, (spend, reset) in totals.items():
            self.service.book.adopt_total(ref, spend, reset, only_up=True)

    # -- reconciliation ------------------------------------------------------------------------
    async def _reconcile(self) -> None:
        current = await self.read_dataset()
        if current is None and self.service is not None:
            written, _ = await self.seed(self._memory_snapshot(), "seed", minus=self.service.book.unsaved())
            if written >= 0:
                self.drop_outbox()  # memory, now in Redis, already held these increments
                log.warning("Redis at %s had lost the gateway's data: seeded again from this host's "
                            "memory (%d records)", self.link.public, written)
        else:
            self.dataset = current
        totals = await self.push_outbox()
        if self.service is not None:
            for ref, (spend, reset) in totals.items():
                self.service.book.adopt_total(ref, spend, reset)

    def _memory_snapshot(self) -> Snapshot:
        assert self.service is not None
        registry = self.service.registry
        g = self.service.book.global_budget
        return Snapshot(
            records={kind: registry.all(kind) for kind in CODECS},
            global_budget=(g.spend, g.budget_duration, g.budget_reset_at),
        )

    # -- keys.db copy ------------------------------------------------------------------------
    async def _copy_loop(self) -> None:
        while True:
            await asyncio.sleep(COPY_INTERVAL)
            if self._copy_dirty and self.service is not None:
                try:
                    await self._write_copy()
                except Exception:
                    log.exception("could not write the keys.db copy of Redis")

    async def _write_copy(self) -> None:
        self._copy_dirty = False
        snapshot = self._memory_snapshot()
        rows = rows_of(snapshot)  # on the event loop: memory is only touched here
        await asyncio.to_thread(self.copy.write_rows, rows, snapshot.global_budget)
