"""Budget alerts at 85 %, 95 % and 100 %: once per crossing per budget period.

Budgets (each key's, and the gateway's `litellm_settings.max_budget`) are the keys service's,
read through `budgetview`. A period is recognised by its id when the snapshot carries one, else
by spend going down (the keys service resets spend when a period rolls over).
"""

from __future__ import annotations

import logging

from ..server.budgetview import Budget
from .batch import BudgetAlert

log = logging.getLogger("proxy.alerts")

LEVELS = (0.85, 0.95, 1.0)


class BudgetWatcher:
    """Remembers, per budget, the highest level already announced in its current period."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str | None, float]] = {}
        self._seeded = False

    def check(self, budgets: list[Budget]) -> list[BudgetAlert]:
        alerts = []
        for budget in budgets:
            level = max((lvl for lvl in LEVELS if budget.ratio >= lvl), default=0.0)
            previous = self._seen.get(budget.ident)
            if not self._seeded:
                # The first look after start-up only learns where each budget stands: a
                # restart must not repeat alerts already sent by the previous process.
                self._seen[budget.ident] = (budget.period, level)
                continue
            announced = 0.0
            if previous is not None and previous[0] == budget.period:
                announced = min(previous[1], level)  # spend fell (a reset): re-arm lower levels
            if level > announced:
                alerts.append(BudgetAlert(
                    scope=budget.scope, label=budget.label, key_alias=budget.key_alias,
                    level=level, spend=budget.spend, max_budget=budget.max_budget,
                ))
                log.warning(
                    "budget alert: %s has used %.0f%% of its $%.2f budget ($%.2f spent)",
                    budget.label, level * 100, budget.max_budget, budget.spend,
                )
            self._seen[budget.ident] = (budget.period, max(level, announced))
        self._seeded = True
        return alerts
