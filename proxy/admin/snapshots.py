"""What /metrics reads of the admin state at scrape time, as plain tuples (server/accounts.py
reads them through AdminService, so the metrics code never imports this package): budgets with
their periods rolled, and rate limits beside what the last minute used of them."""

from __future__ import annotations

import time
from typing import Any

from .admission import model_ref
from .records import END_USER, KEY, TEAM, USER, Ref
from .registry import Registry
from .spendbook import SpendBook

#: Hex digits of a key's hash that name it in metrics (as its budget did before).
HASH_PREFIX = 12

BudgetRow = tuple[str, str, str | None, float, float, float | None]
LimitRow = tuple[str, str, str | None, str | None, str, int, int]


def budgets(registry: Registry, book: SpendBook) -> list[BudgetRow]:
    """(kind, id, alias, max_budget, spend, next reset) of every key (id: the start of its
    hash), team, user and end user that has a budget."""
    now = time.time()
    rows: list[BudgetRow] = []
    for kind in (KEY, TEAM, USER, END_USER):
        for rec in registry.table(kind).values():
            cap = rec.effective_max_budget(now) if kind == KEY else rec.max_budget
            if cap is None:
                continue
            book.roll(rec, Ref(kind, rec.ident), now)
            rows.append((kind, _ident(kind, rec), _alias(kind, rec), cap, rec.spend, rec.budget_reset_at))
    return rows


def rate_limits(registry: Registry, usage: Any) -> list[LimitRow]:
    """(kind, id, alias, model or None, "requests" or "tokens", limit, used in the last
    minute) of every key and team rpm/tpm limit, and of keys' per-model limits.

    `usage(ref) -> (requests, tokens)` is the rate counter's count for the last minute."""
    rows: list[LimitRow] = []
    for kind in (KEY, TEAM):
        for rec in registry.table(kind).values():
            ident, alias = _ident(kind, rec), _alias(kind, rec)
            rows.extend(_limits(kind, ident, alias, None, rec.rpm_limit, rec.tpm_limit, usage(Ref(kind, rec.ident))))
            if kind != KEY:
                continue
            for model in sorted({*rec.model_rpm_limit, *rec.model_tpm_limit}):
                used = usage(model_ref(rec, model))
                rows.extend(_limits(kind, ident, alias, model, rec.model_rpm_limit.get(model),
                                    rec.model_tpm_limit.get(model), used))
    return rows


def _limits(kind: str, ident: str, alias: str | None, model: str | None, rpm: int | None, tpm: int | None,
            used: tuple[int, int]) -> list[LimitRow]:
    rows: list[LimitRow] = []
    if rpm is not None:
        rows.append((kind, ident, alias, model, "requests", rpm, used[0]))
    if tpm is not None:
        rows.append((kind, ident, alias, model, "tokens", tpm, used[1]))
    return rows


def _ident(kind: str, rec: Any) -> str:
    return rec.key_hash[:HASH_PREFIX] if kind == KEY else rec.ident


def _alias(kind: str, rec: Any) -> str | None:
    if kind == KEY:
        return rec.key_alias
    return rec.team_alias if kind == TEAM else None
