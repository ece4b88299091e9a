"""KeyService: the keys cache, budgets and rate limits of a running gateway, and its one
keys.db thread.

Threading: everything in memory is touched only on the event loop. keys.db is touched only by
one worker thread (a single-thread executor holding the one connection), so admin writes and
spend snapshots reach the file in the order they were made and never block the loop. A sync
task persists changed spend counters every `sync_interval` seconds and notices changes other
processes (the keys CLI) committed, through `PRAGMA data_version`.

The service is also the RequestHook: `admit()` enforces budgets and limits, `complete()`
charges each logged request's cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..errors import BadRequest
from ..exchange import Exchange
from ..logdb.record import RequestRecord
from ..settings import LitellmSettings
from . import budgets
from .budgets import GLOBAL, GlobalBudget
from .cache import KeyCache, apply_settings
from .errors import KeyNotFound
from .fields import build_key, updated_key
from .limits import RateLimiter
from .record import KeyRecord, iso, key_hash_of
from .store import DuplicateAlias, KeyStore, to_row

log = logging.getLogger("proxy.keys")
T = TypeVar("T")

#: hook_state entry: the key whose parallel-request slot this request holds.
HOOK_STATE = "keys.slot"


class KeyService:
    def __init__(self, path: str | Path, litellm: LitellmSettings, *, sync_interval: float = 0.5) -> None:
        self.path = Path(path)
        self.sync_interval = sync_interval
        self.cache = KeyCache()
        self.limiter = RateLimiter()
        self.global_budget = GlobalBudget(litellm.max_budget, litellm.budget_duration)
        self._executor: ThreadPoolExecutor | None = None
        self._store: KeyStore | None = None  # used on the executor thread only
        self._lock: asyncio.Lock | None = None
        self._dirty: set[str] = set()
        self._global_dirty = False
        self._data_version: int | None = None
        self._sync_task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keys-db")
        self._lock = asyncio.Lock()
        try:
            records, stored, self._data_version = await self._run(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)  # aiohttp runs no cleanup for a failed start
            raise
        now = time.time()
        for rec in records:
            self.cache.put(rec)
            if budgets.roll(rec, now):  # a period that ended while we were down
                self._dirty.add(rec.key_hash)
        g = self.global_budget
        self.global_budget = budgets.adopt_global(g.max_budget, g.budget_duration, stored, now)
        self._global_dirty = True
        await self.flush()
        self._sync_task = asyncio.create_task(self._sync_loop(), name="keys-sync")
        log.info("keys: %d virtual keys loaded from %s", len(self.cache), self.path)

    async def stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        try:
            await self.flush()
        finally:
            if self._store is not None:
                await self._run(self._store.close)
            if self._executor is not None:
                self._executor.shutdown(wait=True)

    def _open(self) -> tuple[list[KeyRecord], Any, int]:
        self._store = KeyStore(self.path)
        return self._store.load_all(), self._store.load_budget(GLOBAL), self._store.data_version()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None, "KeyService.start() has not run"
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    @property
    def store(self) -> KeyStore:
        assert self._store is not None
        return self._store

    # -- persistence ----------------------------------------------------------------------
    async def flush(self) -> None:
        """Write changed spend counters to keys.db (absolute values: replaying is harmless)."""
        if not self._dirty and not self._global_dirty:
            return
        dirty, self._dirty = self._dirty, set()
        keys = [
            {"key_hash": h, "spend": rec.spend, "budget_reset_at": iso(rec.budget_reset_at)}
            for h in dirty
            if (rec := self.cache.get(h)) is not None
        ]
        g = self.global_budget
        rows = [g.row(iso(time.time()) or "", iso(g.budget_reset_at))] if self._global_dirty else []
        self._global_dirty = False
        try:
            await self._run(self.store.save_spend, keys, rows)
        except sqlite3.Error:
            self._dirty |= dirty
            self._global_dirty = self._global_dirty or bool(rows)
            raise

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.flush()
                await self._reload_if_changed()
            except sqlite3.Error as exc:
                log.warning("keys.db sync failed (will retry): %s", exc)
            except Exception:
                log.exception("keys.db sync failed")

    async def _reload_if_changed(self) -> None:
        if await self._run(self.store.data_version) == self._data_version:
            return
        assert self._lock is not None
        async with self._lock:
            records, self._data_version = await self._run(
                lambda: (self.store.load_all(), self.store.data_version())
            )
            added, removed = self.cache.reload(records)
            for key_hash in removed:
                self.limiter.forget(key_hash)
                self._dirty.discard(key_hash)
        log.info("keys.db changed by another process: %d keys added, %d removed", added, len(removed))

    # -- lookups --------------------------------------------------------------------------
    async def lookup(self, key_hash: str) -> KeyRecord | None:
        """The cached key; on a miss, one read of keys.db (a key the CLI just created)."""
        for _attempt in range(2):
            rec = self.cache.get(key_hash)
            if rec is not None or self.cache.known_missing(key_hash):
                return rec
            epoch = self.cache.epoch
            found = await self._run(self.store.get, key_hash)
            if self.cache.epoch != epoch:
                continue  # a delete or reload ran meanwhile: ask again
            if found is None:
                self.cache.mark_missing(key_hash)
                return None
            rec = self.cache.put(found)
            if budgets.roll(rec, time.time()):
                self._dirty.add(key_hash)
            return rec
        return self.cache.get(key_hash)

    async def find(self, ref: str) -> KeyRecord:
        rec = await self.lookup(key_hash_of(ref))
        if rec is None:
            raise KeyNotFound("Key not found: no such key (it may have been deleted).", param="key")
        return rec

    # -- admin operations -----------------------------------------------------------------
    async def generate(self, fields: dict[str, Any]) -> tuple[str, KeyRecord]:
        raw, rec = build_key(fields, time.time())
        assert self._lock is not None
        async with self._lock:
            if await self.lookup(rec.key_hash) is not None:
                raise BadRequest("This key already exists.", param="key")
            try:
                await self._run(self.store.insert, rec)
            except DuplicateAlias:
                raise BadRequest(f"key_alias `{rec.key_alias}` is already used by another key.", param="key_alias") from None
            self.cache.put(rec)
        log.info("key created: %s (%s)", rec.label, rec.key_hash[:12])
        return raw, rec

    async def update(self, ref: str, fields: dict[str, Any]) -> KeyRecord:
        assert self._lock is not None
        async with self._lock:
            rec = await self.find(ref)
            new = updated_key(rec, fields, time.time())
            try:
                exists = await self._run(self.store.update, to_row(new))
            except DuplicateAlias:
                raise BadRequest(f"key_alias `{new.key_alias}` is already used by another key.", param="key_alias") from None
            if not exists:
                self.cache.remove(rec.key_hash)
                raise KeyNotFound("Key not found: it was deleted meanwhile.", param="key")
            apply_settings(rec, new)
            if "spend" in fields:
                rec.spend = new.spend
                self._dirty.add(rec.key_hash)
        log.info("key updated: %s (%s): %s", rec.label, rec.key_hash[:12], ", ".join(sorted(fields)))
        return rec

    async def delete(self, refs: list[str]) -> list[KeyRecord]:
        """Delete every key of `refs` or, when any is unknown, none of them."""
        assert self._lock is not None
        async with self._lock:
            found = [await self.lookup(key_hash_of(r)) for r in refs]
            missing = sum(1 for rec in found if rec is None)
            if missing:
                raise KeyNotFound(f"{missing} of {len(refs)} keys not found; nothing was deleted.", param="keys")
            records = [rec for rec in found if rec is not None]
            await self._run(self.store.delete, [rec.key_hash for rec in records])
            for rec in records:
                self.cache.remove(rec.key_hash)
                self.limiter.forget(rec.key_hash)
                self._dirty.discard(rec.key_hash)
        for rec in records:
            log.info("key deleted: %s (%s)", rec.label, rec.key_hash[:12])
        return records

    def alias_hash(self, alias: str) -> str | None:
        return next((rec.key_hash for rec in self.cache if rec.key_alias == alias), None)

    # -- the request hook -----------------------------------------------------------------
    async def admit(self, ex: Exchange) -> None:
        now = time.time()
        g = self.global_budget
        if budgets.roll(g, now):
            self._global_dirty = True
        budgets.check(g)
        principal = ex.principal
        rec = self.cache.get(principal.key_hash) if principal and principal.key_hash else None
        if rec is None:
            return  # the master key, or an open gateway: only the global budget applies
        if budgets.roll(rec, now):
            self._dirty.add(rec.key_hash)
        budgets.check(rec)
        self.limiter.acquire(rec)
        ex.hook_state[HOOK_STATE] = rec.key_hash

    def complete(self, ex: Exchange, record: RequestRecord) -> None:
        held = ex.hook_state.pop(HOOK_STATE, None)
        if held is not None:
            self.limiter.release(held)
        cost = record.cost or 0.0
        now = time.time()
        if cost > 0:
            g = self.global_budget
            budgets.roll(g, now)
            g.spend += cost
            self._global_dirty = True
        rec = self.cache.get(record.key_hash) if record.key_hash else None
        if rec is None:
            return
        if cost > 0:
            budgets.roll(rec, now)
            rec.spend += cost
            self._dirty.add(rec.key_hash)
        self.limiter.add_tokens(rec, record.total_tokens)

    # -- for metrics ----------------------------------------------------------------------
    def budget_snapshot(self) -> list[tuple[str, str, float, float | None]]:
        """(key alias or display name, first 12 hex of the key hash, spend, max_budget) per key."""
        now = time.time()
        out = []
        for rec in self.cache:
            if budgets.roll(rec, now):
                self._dirty.add(rec.key_hash)
            out.append((rec.label, rec.key_hash[:12], rec.spend, rec.max_budget))
        return sorted(out)

    def global_snapshot(self) -> tuple[float, float | None]:
        """(spend this period, max_budget) of the whole gateway."""
        if budgets.roll(self.global_budget, time.time()):
            self._global_dirty = True
        return self.global_budget.spend, self.global_budget.max_budget
