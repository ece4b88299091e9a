"""A read-only view of budgets for metrics and alerts, whatever the keys service reports.

The keys service (registered by the keys feature as `app[EXTRAS]["keys"]`) may be absent (then
there are no budgets to show) and is read through two methods, sync or async:

    budget_snapshot()  per key: a tuple (alias or display name, key-hash prefix, spend,
                       max_budget), or a mapping/object with key_alias, key_hash, spend,
                       max_budget and optionally scope and period (e.g. budget_reset_at)
    global_snapshot()  optional: (spend this period, max_budget) of the whole gateway

Entries without a max_budget are skipped: there is nothing to run out of.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..state import EXTRAS

log = logging.getLogger("proxy.budgets")

KEYS_SERVICE = "keys"


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str  # "key" or "gateway"
    key_hash: str | None
    key_alias: str | None
    max_budget: float
    spend: float
    period: str | None

    @property
    def ident(self) -> str:
        return "gateway" if self.scope == "gateway" else f"key:{self.key_hash or self.key_alias}"

    @property
    def label(self) -> str:
        if self.scope == "gateway":
            return "the gateway"
        return f"key {self.key_alias}" if self.key_alias else f"key {(self.key_hash or '?')[:12]}…"

    @property
    def remaining(self) -> float:
        return self.max_budget - self.spend

    @property
    def ratio(self) -> float:
        if self.max_budget <= 0:
            return 1.0 if self.spend > 0 or self.max_budget == 0 else 0.0
        return self.spend / self.max_budget


def keys_service(app: web.Application) -> Any | None:
    service = app[EXTRAS].get(KEYS_SERVICE)
    return service if service is not None and hasattr(service, "budget_snapshot") else None


def snapshot_sync(app: web.Application) -> list[Budget]:
    """For the /metrics collector (which runs synchronously); async snapshots are skipped."""
    service = keys_service(app)
    if service is None:
        return []
    try:
        keys = service.budget_snapshot()
        total = service.global_snapshot() if hasattr(service, "global_snapshot") else None
    except Exception:
        log.exception("keys service budget snapshot failed")
        return []
    for raw in (keys, total):
        if inspect.isawaitable(raw):
            if hasattr(raw, "close"):
                raw.close()  # never awaited: avoid the "coroutine was never awaited" warning
            return []
    return normalise(keys) + _gateway(total)


async def snapshot(app: web.Application) -> list[Budget] | None:
    """Budgets from the keys service; None when there is no keys service."""
    service = keys_service(app)
    if service is None:
        return None
    try:
        keys = service.budget_snapshot()
        if inspect.isawaitable(keys):
            keys = await keys
        total = service.global_snapshot() if hasattr(service, "global_snapshot") else None
        if inspect.isawaitable(total):
            total = await total
    except Exception:
        log.exception("keys service budget snapshot failed")
        return []
    return normalise(keys) + _gateway(total)


def _gateway(raw: Any) -> list[Budget]:
    """global_snapshot(): (spend, max_budget), or a mapping like a per-key entry."""
    if isinstance(raw, tuple) and len(raw) == 2:
        raw = {"spend": raw[0], "max_budget": raw[1]}
    budget = _one(raw, "gateway") if raw is not None else None
    return [budget] if budget is not None else []


def normalise(raw: Any) -> list[Budget]:
    if raw is None:
        return []
    entries: list[tuple[Any, str | None]] = []
    if isinstance(raw, Mapping) and ("keys" in raw or "gateway" in raw):
        entries.extend((item, "key") for item in raw.get("keys") or ())
        if raw.get("gateway") is not None:
            entries.append((raw["gateway"], "gateway"))
    elif isinstance(raw, Iterable) and not isinstance(raw, (str, bytes, Mapping)):
        entries.extend((item, None) for item in raw)
    budgets = []
    for item, scope in entries:
        budget = _one(item, scope)
        if budget is not None:
            budgets.append(budget)
    return budgets


def _one(item: Any, scope: str | None) -> Budget | None:
    if isinstance(item, tuple) and len(item) == 4:
        label, hash_prefix, spend, max_budget = item
        item = {"key_alias": label, "key_hash": hash_prefix, "spend": spend, "max_budget": max_budget}

    def get(*names: str) -> Any:
        for name in names:
            value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
            if value is not None:
                return value
        return None

    max_budget = _number(get("max_budget"))
    if max_budget is None:
        return None
    period = get("period", "period_start", "budget_reset_at", "reset_at")
    return Budget(
        scope=str(scope or get("scope") or "key"),
        key_hash=_text(get("key_hash", "hashed_api_key", "token")),
        key_alias=_text(get("key_alias", "alias")),
        max_budget=max_budget,
        spend=_number(get("spend")) or 0.0,
        period=None if period is None else str(period),
    )


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
