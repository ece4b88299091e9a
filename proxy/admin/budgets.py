"""Budget periods and checks, the same for every level: key, user, team, team member, end user
and the whole gateway (`litellm_settings.max_budget` + `budget_duration`).

Spend lives in memory and is changed only on the event loop: the admission hook adds each
request's logged cost the moment the request is logged, so the next check already sees it.
Every sync interval (0.5 s) the spend book adds what it charged to the spend ledger — an
increment, never an absolute value — and adopts the totals stored there, so several gateway
processes share each budget; reset times are stored too, so a restart neither forgets spend
nor postpones a reset.

Overshoot: a request is admitted while spend < max_budget and its cost is only known when it
ends, so requests already in flight when a budget is crossed still finish and are charged.
Final spend is therefore at most max_budget + the cost of the requests in flight at that
moment (each at most one response's cost); no request is admitted after spend >= max_budget.
With several gateway processes, add what the others charged in their last sync interval.
Reserving an estimate up front would bound it tighter but refuse requests that would fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import parse_duration
from ..errors import BudgetExceeded
from .records.base import GLOBAL, Budgeted


@dataclass(slots=True)
class GlobalBudget:
    max_budget: float | None = None
    budget_duration: str | None = None
    spend: float = 0.0
    budget_reset_at: float | None = None

    label = "the gateway"


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


def check(budget: Budgeted, *, scope: str = "", suffix: str = "", cap: float | None = None) -> None:
    """Raise BudgetExceeded (429) when spend has reached the cap (`cap` overrides max_budget).

    The message says which budget ran out: `scope` names it the way LiteLLM names a team's
    ("Team=research"); a key's and the gateway's keep LiteLLM's plain message and say which in
    `suffix`, so clients matching LiteLLM's text keep working.
    """
    cap = budget.max_budget if cap is None else cap
    if cap is None or budget.spend < cap:
        return
    named = f"{scope} " if scope else ""
    raise BudgetExceeded(
        f"Budget has been exceeded! {named}Current cost: {budget.spend}, Max budget: {cap}{suffix}"
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


__all__ = ["GLOBAL", "GlobalBudget", "adopt_global", "check", "next_reset", "roll"]
