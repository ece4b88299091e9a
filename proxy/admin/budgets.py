"""Budgets: per key (`max_budget` + `budget_duration`) and for the whole gateway
(`litellm_settings.max_budget` + `budget_duration`).

Spend lives in memory and is changed only on the event loop: `complete()` adds each request's
logged cost the moment the request is logged, so the next `admit()` already sees it. Every
sync interval (0.5 s) the service adds what it charged to keys.db — an increment, never an
absolute value — and adopts the totals stored there, so several gateway processes on one
keys.db share each budget; reset times are stored too, so a restart neither forgets spend nor
postpones a reset.

Overshoot: a request is admitted while spend < max_budget and its cost is only known when it
ends, so requests already in flight when the budget is crossed still finish and are charged.
Final spend is therefore at most max_budget + the cost of the requests in flight at that
moment (each at most one response's cost); no request is admitted after spend >= max_budget.
With several gateway processes, add what the others charged in their last sync interval.
Reserving an estimate up front would bound it tighter but refuse requests that would fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..config import parse_duration
from ..errors import BudgetExceeded

GLOBAL = "global"


class Budgeted(Protocol):
    spend: float
    max_budget: float | None
    budget_duration: str | None
    budget_reset_at: float | None


@dataclass(slots=True)
class GlobalBudget:
    max_budget: float | None = None
    budget_duration: str | None = None
    spend: float = 0.0
    budget_reset_at: float | None = None

    def row(self, now_iso: str, reset_iso: str | None) -> dict[str, object]:
        return {
            "name": GLOBAL,
            "spend": self.spend,
            "budget_duration": self.budget_duration,
            "budget_reset_at": reset_iso,
            "updated_at": now_iso,
        }


def next_reset(duration: str | None, now: float) -> float | None:
    return None if not duration else now + parse_duration(duration, "budget_duration")


def roll(budget: Budgeted, now: float) -> bool:
    """Start a new period when the current one is over. True when anything changed."""
    if not budget.budget_duration:
        if budget.budget_reset_at is None:
            return False
        budget.budget_reset_at = None
        return True
    if budget.budget_reset_at is None:
        budget.budget_reset_at = next_reset(budget.budget_duration, now)
        return True
    if now < budget.budget_reset_at:
        return False
    budget.spend = 0.0
    budget.budget_reset_at = next_reset(budget.budget_duration, now)
    return True


def check(budget: Budgeted) -> None:
    if budget.max_budget is not None and budget.spend >= budget.max_budget:
        raise BudgetExceeded(
            f"Budget has been exceeded! Current cost: {budget.spend}, Max budget: {budget.max_budget}",
            code="budget_exceeded",
        )


def adopt_global(
    max_budget: float | None,
    duration: str | None,
    stored: tuple[float, str | None, float | None] | None,
    now: float,
) -> GlobalBudget:
    """The gateway budget from config plus what keys.db remembers of the current period."""
    budget = GlobalBudget(max_budget=max_budget, budget_duration=duration)
    if stored is not None:
        spend, stored_duration, reset_at = stored
        budget.spend = spend
        # A changed period in config.yaml starts a new period now; the spend so far still counts.
        budget.budget_reset_at = reset_at if stored_duration == duration else next_reset(duration, now)
    roll(budget, now)
    return budget
