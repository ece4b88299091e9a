"""Spend in memory, and its way to the spend ledger.

`charge()` adds a request's cost to a counter at once (on the event loop), so the next
admission sees it; `flush()` adds what was charged since the last flush to the ledger — an
increment — and adopts the totals the ledger returns, which include other processes' charges.
A flush that fails keeps its increments for the next one.
"""

from __future__ import annotations

import time
from typing import Any

from . import budgets
from .budgets import GlobalBudget
from .records import GLOBAL, Ref
from .registry import Registry
from .store.base import Charge, SpendLedger

GLOBAL_REF = Ref(GLOBAL, GLOBAL)


class SpendBook:
    def __init__(self, registry: Registry, ledger: SpendLedger, global_budget: GlobalBudget) -> None:
        self.registry = registry
        self.ledger = ledger
        self.global_budget = global_budget
        self._dirty: set[Ref] = set()
        #: Spend charged here and not yet added to the ledger (other processes add theirs too).
        self._unsaved: dict[Ref, float] = {}

    def record(self, ref: Ref) -> Any | None:
        if ref == GLOBAL_REF:
            return self.global_budget
        return self.registry.get(ref.kind, ref.ident)

    def roll(self, rec: Any, ref: Ref, now: float) -> None:
        if budgets.roll(rec, now):
            self._dirty.add(ref)
            self._unsaved.pop(ref, None)  # charged to the period that just ended

    def charge(self, rec: Any, ref: Ref, cost: float, now: float) -> None:
        self.roll(rec, ref, now)
        rec.spend += cost
        self._unsaved[ref] = self._unsaved.get(ref, 0.0) + cost
        self._dirty.add(ref)

    def forget(self, ref: Ref) -> None:
        self._dirty.discard(ref)
        self._unsaved.pop(ref, None)

    async def set_spend(self, ref: Ref, rec: Any, spend: float) -> None:
        """An admin setting spend outright: stored at once, unsaved increments dropped."""
        await self.ledger.set_spend(ref, spend)
        rec.spend = spend
        self._unsaved.pop(ref, None)

    async def flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        deltas, self._unsaved = self._unsaved, {}
        now = time.time()
        charges = []
        for ref in dirty:
            rec = self.record(ref)
            if rec is None:
                continue
            charges.append(Charge(
                ref=ref, delta=deltas.get(ref, 0.0), now=now,
                next_reset=budgets.next_reset(rec.budget_duration, now),
                budget_duration=rec.budget_duration, budget_reset_at=rec.budget_reset_at,
            ))
        try:
            totals = await self.ledger.charge(charges)
        except Exception:
            for ref, delta in deltas.items():  # keep them for the next try
                self._unsaved[ref] = self._unsaved.get(ref, 0.0) + delta
            self._dirty |= dirty
            raise
        for ref, (spend, reset_at) in totals.items():
            rec = self.record(ref)
            if rec is not None:
                rec.spend = spend + self._unsaved.get(ref, 0.0)
                rec.budget_reset_at = reset_at

    def adopt(self, fresh: Any) -> None:
        """Spend another process stored (after a reload), plus ours not yet flushed."""
        self.adopt_total(Ref(fresh.KIND, fresh.ident), fresh.spend, fresh.budget_reset_at)

    def adopt_total(self, ref: Ref, spend: float, reset_at: float | None, *, only_up: bool = False) -> None:
        """A stored total (plus ours not yet flushed). `only_up`: a total that may be older than
        what memory holds (a published one) never lowers spend within the same period."""
        rec = self.record(ref)
        if rec is None:
            return
        total = spend + self._unsaved.get(ref, 0.0)
        if only_up and reset_at == rec.budget_reset_at and total < rec.spend:
            return
        rec.spend = total
        rec.budget_reset_at = reset_at

    def unsaved(self) -> dict[Ref, float]:
        """Spend charged here and not yet handed to the ledger."""
        return dict(self._unsaved)

    def adopt_global(self, stored: tuple[float, str | None, float | None] | None) -> None:
        g = self.global_budget
        if stored is not None and stored[1] == g.budget_duration:
            g.spend = stored[0] + self._unsaved.get(GLOBAL_REF, 0.0)
            g.budget_reset_at = stored[2]
