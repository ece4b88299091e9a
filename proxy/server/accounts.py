"""Read-only lookups into the keys service for /metrics and response headers.

The keys service (proxy.admin, registered as app[EXTRAS]["keys"]) may be absent, and neither
metrics nor the API handlers import it: this module is the one place that knows its shape.
Everything here runs on the event loop, reads memory only and never raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..state import EXTRAS

log = logging.getLogger("proxy.metrics")

KEYS_SERVICE = "keys"
#: How many hex digits of a key's SHA-256 name it in metrics (as proxy.admin.snapshots does).
HASH_PREFIX = 12


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A budget with a limit: a key's, team's, user's or end user's."""

    kind: str  # "key", "team", "user" or "end_user"
    ident: str  # key: the hash prefix; else the team, user or end-user id
    alias: str  # key alias or team alias ("" when none)
    max_budget: float
    spend: float
    reset_at: float | None  # epoch seconds of the next reset; None: it never resets

    @property
    def remaining(self) -> float:
        return self.max_budget - self.spend

    def remaining_hours(self, now: float) -> float | None:
        return None if self.reset_at is None else max(0.0, (self.reset_at - now) / 3600)


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """A key's or team's rpm or tpm limit (a key's may be per model) and its use this minute."""

    kind: str  # "key" or "team"
    ident: str
    alias: str
    model: str  # "" unless a key's per-model limit
    limit_type: str  # "requests" or "tokens"
    limit: int
    used: int


class Accounts:
    def __init__(self, app: web.Application) -> None:
        self._app = app

    def _service(self) -> Any | None:
        return self._app[EXTRAS].get(KEYS_SERVICE)

    def key_spend(self, key_hash: str | None) -> float | None:
        """A virtual key's spend this budget period; None for the master key or no key."""
        service = self._service()
        if service is None or not key_hash:
            return None
        try:
            rec = service.registry.charged_key(key_hash)
        except Exception:
            log.exception("keys service lookup failed")
            return None
        return None if rec is None else float(rec.spend)

    def team_alias(self, team_id: str | None) -> str:
        service = self._service()
        if service is None or not team_id:
            return ""
        team = service.registry.teams.get(team_id)
        return (team.team_alias or "") if team is not None else ""

    def budgets(self) -> list[BudgetState]:
        return [
            BudgetState(kind, ident, alias or "", float(cap), float(spend), reset_at)
            for kind, ident, alias, cap, spend, reset_at in self._call("budget_states")
        ]

    def rate_limits(self) -> list[RateLimitState]:
        return [
            RateLimitState(kind, ident, alias or "", model or "", limit_type, limit, used)
            for kind, ident, alias, model, limit_type, limit, used in self._call("rate_limit_states")
        ]

    def counts(self) -> tuple[int, int, list[tuple[str, str, int]]] | None:
        """(users, teams, [(team id, alias, members)]) when there is a keys service."""
        service = self._service()
        if service is None:
            return None
        try:
            registry = service.registry
            members = [(t.team_id, t.team_alias or "", len(registry.members_of(t.team_id)))
                       for t in registry.teams.values()]
            return len(registry.users), len(registry.teams), members
        except Exception:
            log.exception("keys service counts failed")
            return None

    def gateway_budget(self) -> tuple[float, float] | None:
        """(spend this period, max_budget) of litellm_settings.max_budget, when one is set."""
        service = self._service()
        if service is None:
            return None
        try:
            spend, max_budget = service.global_snapshot()
        except Exception:
            log.exception("keys service budget snapshot failed")
            return None
        return None if max_budget is None else (float(spend), float(max_budget))

    def _call(self, method: str) -> list[Any]:
        service = self._service()
        if service is None:
            return []
        try:
            return list(getattr(service, method)())
        except Exception:
            log.exception("keys service %s failed", method)
            return []


ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts", Accounts)
