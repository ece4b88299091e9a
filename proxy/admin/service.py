"""AdminService: the admin state of a running gateway (or of one CLI command) — registry in
memory, spend book, rate counter, the admission hook — over its store and ledger.

Threading: everything in memory is touched only on the event loop. The store and ledger are
the SQLite backend today (one keys.db thread); a sync task adds the spend charged here to the
ledger every `sync_interval` seconds (adopting totals, other processes' charges included) and
reloads the registry when another process changed the store.

Writes go to the store first and reach memory only once it accepted them, under one lock, so
two admin calls never interleave and a failed write changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..settings import Config
from . import budgets, snapshots
from .access import ModelAccess
from .admission import Admission
from .errors import StoreUnavailable
from .records import GLOBAL, KEY, KeyRecord, Ref
from .registry import Registry, spend_records
from .spendbook import SpendBook
from .store.backend import SqliteBackend
from .store.memory_limits import MemoryRateCounter
from .store.redis_config import redis_url
from .store.sqlite_limits import SqliteRateCounter

log = logging.getLogger("proxy.keys")


class AdminService:
    def __init__(
        self, path: str | Path, config: Config, *, sync_interval: float = 0.5,
        shared_limits: Path | None = None,
    ) -> None:
        """`shared_limits`: the rate-limit file the workers of `serve --workers N` share
        (store/sqlite_limits.py); a single process counts in memory. With Redis, Redis counts
        for every worker of every host and `shared_limits` is not used."""
        self.path = Path(path)
        self.sync_interval = sync_interval
        self.config = config
        # general_settings.redis_url (or LiteLLM's redis settings): Redis holds the state every
        # host shares and keys.db is this host's copy; else keys.db is the store.
        self.redis_url = redis_url(config)
        if self.redis_url:
            from .store.redis_backend import RedisBackend

            self.backend: Any = RedisBackend(self.redis_url, self.path)
            self.shared_counter: SqliteRateCounter | None = None
            self.counter: Any = self.backend.counter
        else:
            self.backend = SqliteBackend(self.path)
            self.shared_counter = SqliteRateCounter(shared_limits) if shared_limits is not None else None
            self.counter = self.shared_counter or MemoryRateCounter()
        self.store = self.backend  # EntityStore
        self.registry = Registry(ModelAccess(config.models))
        litellm = config.litellm
        self.book = SpendBook(self.registry, self.backend, budgets.GlobalBudget(litellm.max_budget, litellm.budget_duration))
        if self.redis_url:
            self.backend.bind(self)
        self.admission = Admission(self.registry, self.book, self.counter)
        self.lock = asyncio.Lock()
        self._token: object | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._stopping = False
        #: Called (on the event loop) after the registry changed: a load, a reload after another
        #: process's write, or this process's own write. Must not raise (deployments.py).
        self.listeners: list[Callable[[], None]] = []

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, *, sync: bool = True, gateway: bool = True) -> None:
        """Open the store and load it. `gateway=False` (a CLI command) leaves spend, budget
        periods and the gateway budget to the gateways: it only reads and edits settings."""
        snapshot = await self.store.open()
        if self.shared_counter is not None and gateway:
            await self.shared_counter.open()
        self._token = await self.store.change_token()
        self.registry.reload(snapshot.records)
        self._changed()
        if not gateway:
            return
        now = time.time()
        for rec in spend_records(self.registry):
            self.book.roll(rec, Ref(rec.KIND, rec.ident), now)  # a period that ended while down
        g = self.book.global_budget
        self.book.global_budget = budgets.adopt_global(g.max_budget, g.budget_duration, snapshot.global_budget, now)
        g = self.book.global_budget
        await self.backend.save_global(g.spend, g.budget_duration, g.budget_reset_at)
        await self.flush()
        if sync:
            self._sync_task = asyncio.create_task(self._sync_loop(), name="keys-sync")
        log.info("keys: %d virtual keys loaded from %s", len(self.registry.keys),
                 self.backend.link.public if self.redis_url else self.path)

    async def stop(self) -> None:
        self._stopping = True  # also ends the loop if a library swallowed the cancellation
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        try:
            await self.flush()
        finally:
            await self.store.close()
            if self.shared_counter is not None:
                await self.shared_counter.close()

    async def flush(self) -> None:
        """Add the spend charged here since the last flush to the ledger; adopt its totals."""
        await self.book.flush()

    async def _sync_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.flush()
                await self.reload_if_changed()
            except sqlite3.Error as exc:
                log.warning("keys.db sync failed (will retry): %s", exc)
            except StoreUnavailable:
                pass  # Redis is down: the link logs it and reconciles
            except Exception:
                log.exception("keys.db sync failed")

    async def reload_if_changed(self) -> None:
        if await self.store.change_token() == self._token:
            return
        async with self.lock:
            token = await self.store.change_token()  # before load: a change after it reloads again
            snapshot = await self.store.load()
            self._token = token
            added, removed = self.registry.reload(snapshot.records)
            for kind, ident in removed:
                self.counter.forget(Ref(kind, ident))
                self.book.forget(Ref(kind, ident))
            for records in snapshot.records.values():
                for fresh in records:
                    if hasattr(fresh, "spend"):
                        self.book.adopt(fresh)
            self.book.adopt_global(snapshot.global_budget)
            self._changed()
        keys_removed = sum(1 for kind, _ in removed if kind == KEY)
        level = logging.INFO if added or keys_removed else logging.DEBUG
        log.log(level, "keys.db changed by another process: %d keys added, %d removed", added, keys_removed)

    # -- lookups --------------------------------------------------------------------------
    async def lookup(self, key_hash: str) -> KeyRecord | None:
        """The key in memory; on a miss, one read of the store (a key the CLI just created),
        with its user and team when they are new too."""
        registry = self.registry
        for _attempt in range(2):
            rec = registry.keys.get(key_hash)
            if rec is not None or registry.known_missing(key_hash):
                return rec
            epoch = registry.epoch
            found = await self.store.get(KEY, key_hash)
            related = []
            if found is not None:
                for kind, ident in (("user", found.user_id), ("team", found.team_id)):
                    if ident and registry.get(kind, ident) is None:
                        related.append(await self.store.get(kind, ident))
            if registry.epoch != epoch:
                continue  # a delete or reload ran meanwhile: ask again
            if found is None:
                registry.mark_missing(key_hash)
                return None
            for rec in related:
                if rec is not None:
                    registry.put(rec)
            rec = registry.put(found)
            self.book.roll(rec, Ref(KEY, key_hash), time.time())
            return rec
        return registry.keys.get(key_hash)

    async def find(self, kind: str, ident: str) -> Any | None:
        """A record from memory, else from the store (one another process just created)."""
        rec = self.registry.get(kind, ident)
        if rec is None:
            found = await self.store.get(kind, ident)
            if found is not None:
                rec = self.registry.put(found)
        return rec

    # -- writes (callers hold self.lock) ----------------------------------------------------
    async def write(
        self, inserts: Sequence[Any] = (), updates: Sequence[Any] = (), deletes: Sequence[Ref] = ()
    ) -> list[Any]:
        """Store the changes in one transaction, then apply them in memory. Returns the records
        held in memory for `inserts` + `updates`, in that order."""
        await self.store.apply(list(inserts), list(updates), list(deletes))
        for ref in deletes:
            self.registry.remove(ref.kind, ref.ident)
            self.counter.forget(ref)
            self.book.forget(ref)
        held = [self.registry.put(rec) for rec in (*inserts, *updates)]
        self._changed()
        return held

    def _changed(self) -> None:
        for listener in self.listeners:
            try:
                listener()
            except Exception:
                log.exception("applying an admin change failed")

    async def set_spend(self, rec: Any, spend: float) -> None:
        await self.book.set_spend(Ref(rec.KIND, rec.ident), rec, spend)

    # -- for metrics and alerts (server/budgetview.py) --------------------------------------
    def budget_snapshot(self) -> list[tuple[str, str, float, float | None]]:
        """(key alias or display name, first 12 hex of the key hash, spend, max_budget) per key."""
        now = time.time()
        out = []
        for rec in self.registry:
            self.book.roll(rec, Ref(KEY, rec.key_hash), now)
            out.append((rec.label, rec.key_hash[:12], rec.spend, rec.max_budget))
        return sorted(out)

    def budget_states(self) -> list[snapshots.BudgetRow]:
        """Every key, team, user and end user budget, for /metrics (server/accounts.py)."""
        return snapshots.budgets(self.registry, self.book)

    def rate_limit_states(self) -> list[snapshots.LimitRow]:
        """Key and team rpm/tpm limits with their use in the last minute, for /metrics."""
        usage = getattr(self.counter, "usage", None)
        return snapshots.rate_limits(self.registry, usage) if usage is not None else []

    def global_snapshot(self) -> tuple[float, float | None]:
        """(spend this period, max_budget) of the whole gateway."""
        g = self.book.global_budget
        self.book.roll(g, Ref(GLOBAL, GLOBAL), time.time())
        return g.spend, g.max_budget

    @property
    def global_budget(self) -> budgets.GlobalBudget:
        return self.book.global_budget

