"""KeyService: the keys cache, budgets and rate limits of a running gateway, and its one
keys.db thread.

Threading: everything in memory is touched only on the event loop. keys.db is touched only by
one worker thread (a single-thread executor holding the one connection), so admin writes and
spend increments reach the file in the order they were made and never block the loop. A sync
task adds the spend charged here to keys.db every `sync_interval` seconds (adopting the totals,
other processes' charges included) and notices changes other processes (the keys CLI, other
gateways) committed, through `PRAGMA data_version`.

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

from ..accounting.exchange import Exchange
from ..errors import BadRequest
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
        # Spend charged here and not yet added to keys.db (other processes add theirs too).
        self._unsaved: dict[str, float] = {}
        self._global_unsaved = 0.0
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
            self._roll_key(self.cache.put(rec), now)  # a period that ended while we were down
        g = self.global_budget
        self.global_budget = budgets.adopt_global(g.max_budget, g.budget_duration, stored, now)
        g = self.global_budget
        await self._run(self.store.save_spend, [], [g.row(iso(now) or "", iso(g.budget_reset_at))])
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
        """Add the spend charged here since the last flush to keys.db, then adopt the totals
        stored there, which include what other gateway processes on the same file charged."""
        if not self._dirty and not self._global_dirty:
            return
        dirty, self._dirty = self._dirty, set()
        deltas, self._unsaved = self._unsaved, {}
        global_dirty, self._global_dirty = self._global_dirty, False
        global_delta, self._global_unsaved = self._global_unsaved, 0.0
        now = time.time()
        charges = [
            {"key_hash": h, "delta": deltas.get(h, 0.0), "now": iso(now),
             "next_reset": iso(budgets.next_reset(rec.budget_duration, now))}
            for h in dirty
            if (rec := self.cache.get(h)) is not None
        ]
        g = self.global_budget
        budget = {
            "name": GLOBAL, "delta": global_delta, "budget_duration": g.budget_duration,
            "budget_reset_at": iso(g.budget_reset_at), "now": iso(now),
            "next_reset": iso(budgets.next_reset(g.budget_duration, now)),
        } if global_dirty else None
        try:
            totals, stored = await self._run(self.store.charge, charges, budget)
        except sqlite3.Error:
            for h, delta in deltas.items():  # keep them for the next try
                self._unsaved[h] = self._unsaved.get(h, 0.0) + delta
            self._dirty |= dirty
            self._global_unsaved += global_delta
            self._global_dirty = self._global_dirty or global_dirty
            raise
        for h, (spend, reset_at) in totals.items():
            if (rec := self.cache.get(h)) is not None:
                rec.spend = spend + self._unsaved.get(h, 0.0)
                rec.budget_reset_at = reset_at
        if stored is not None:
            g.spend = stored[0] + self._global_unsaved
            g.budget_reset_at = stored[1]

    def _roll_key(self, rec: KeyRecord, now: float) -> None:
        if budgets.roll(rec, now):
            self._dirty.add(rec.key_hash)
            self._unsaved.pop(rec.key_hash, None)  # charged to the period that just ended

    def _roll_global(self, now: float) -> None:
        if budgets.roll(self.global_budget, now):
            self._global_dirty = True
            self._global_unsaved = 0.0

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
            records, stored, self._data_version = await self._run(
                lambda: (self.store.load_all(), self.store.load_budget(GLOBAL), self.store.data_version())
            )
            added, removed = self.cache.reload(records)
            for key_hash in removed:
                self.limiter.forget(key_hash)
                self._dirty.discard(key_hash)
                self._unsaved.pop(key_hash, None)
            # Spend other gateway processes charged, plus ours not yet flushed.
            for fresh in records:
                if (rec := self.cache.get(fresh.key_hash)) is not None:
                    rec.spend = fresh.spend + self._unsaved.get(rec.key_hash, 0.0)
                    rec.budget_reset_at = fresh.budget_reset_at
            if stored is not None and stored[1] == self.global_budget.budget_duration:
                self.global_budget.spend = stored[0] + self._global_unsaved
                self.global_budget.budget_reset_at = stored[2]
        level = logging.INFO if added or removed else logging.DEBUG
        log.log(level, "keys.db changed by another process: %d keys added, %d removed", added, len(removed))

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
            self._roll_key(rec, time.time())
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
            if "spend" in fields:  # an admin setting spend outright (e.g. back to 0)
                await self._run(self.store.set_spend, rec.key_hash, new.spend)
                rec.spend = new.spend
                self._unsaved.pop(rec.key_hash, None)
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
        self._roll_global(now)
        budgets.check(self.global_budget)
        principal = ex.principal
        rec = self.cache.get(principal.key_hash) if principal and principal.key_hash else None
        if rec is None:
            return  # the master key, or an open gateway: only the global budget applies
        self._roll_key(rec, now)
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
            self._roll_global(now)
            self.global_budget.spend += cost
            self._global_unsaved += cost
            self._global_dirty = True
        rec = self.cache.get(record.key_hash) if record.key_hash else None
        if rec is None:
            return
        if cost > 0:
            self._roll_key(rec, now)
            rec.spend += cost
            self._unsaved[rec.key_hash] = self._unsaved.get(rec.key_hash, 0.0) + cost
            self._dirty.add(rec.key_hash)
        self.limiter.add_tokens(rec, record.total_tokens)

    # -- for metrics ----------------------------------------------------------------------
    def budget_snapshot(self) -> list[tuple[str, str, float, float | None]]:
        """(key alias or display name, first 12 hex of the key hash, spend, max_budget) per key."""
        now = time.time()
        out = []
        for rec in self.cache:
            self._roll_key(rec, now)
            out.append((rec.label, rec.key_hash[:12], rec.spend, rec.max_budget))
        return sorted(out)

    def global_snapshot(self) -> tuple[float, float | None]:
        """(spend this period, max_budget) of the whole gateway."""
        self._roll_global(time.time())
        return self.global_budget.spend, self.global_budget.max_budget
