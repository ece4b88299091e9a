"""The three interfaces behind which the admin state lives, so a second backend (Redis, for
several hosts) plugs in without the code that checks a budget knowing which one holds it.

  EntityStore  settings of keys, users, teams, members, end users, budget tiers (CRUD) and a
               change token; read in full at start-up and when another process changed it,
               never on the request path (the registry in memory serves that).
  SpendLedger  spend counters: add increments, start a new budget period when the current one
               ended, and return the totals now stored (other processes' charges included).
  RateCounter  requests, tokens and parallel requests per entity over a sliding minute.

All take and return plain records and `Ref(kind, ident)` (records/base.py). The SQLite/
in-memory implementations are store/sqlite.py (+ backend.py) and store/memory_limits.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..records import Ref


@dataclass
class Snapshot:
    """Everything an EntityStore holds, as records (spend and period included)."""

    records: dict[str, list[Any]] = field(default_factory=dict)  # kind -> records
    #: The gateway budget's stored state: (spend, budget_duration, budget_reset_at) or None.
    global_budget: tuple[float, str | None, float | None] | None = None


class DuplicateAlias(Exception):
    """Another key already has this key_alias."""


class AlreadyExists(Exception):
    """A record with this id exists already."""


class Missing(Exception):
    """An update found no record to change (another process deleted it)."""


class EntityStore(Protocol):
    async def open(self) -> Snapshot:
        """Create/upgrade the storage and load everything."""
        ...

    async def close(self) -> None: ...

    async def change_token(self) -> object:
        """Differs from the last value whenever another process changed anything."""
        ...

    async def load(self) -> Snapshot: ...

    async def get(self, kind: str, ident: str) -> Any | None:
        """One record (a key a CLI just created, on a cache miss)."""
        ...

    async def insert(self, record: Any) -> None:
        """Raises AlreadyExists, or DuplicateAlias for a key."""
        ...

    async def update(self, record: Any) -> bool:
        """Write a record's settings (never its spend); False when it no longer exists."""
        ...

    async def delete(self, kind: str, idents: Iterable[str]) -> int:
        """Delete all of them in one transaction; returns how many existed."""
        ...

    async def apply(self, inserts: Sequence[Any], updates: Sequence[Any], deletes: Sequence[Ref]) -> None:
        """Several changes in one transaction (a team with its members, a user with its key);
        raises Missing when an update finds no record, AlreadyExists or DuplicateAlias."""
        ...


@dataclass(frozen=True)
class Charge:
    """Spend to add to one counter. `next_reset` (epoch) starts a new period in storage when
    the stored one ended (another process may have started it already)."""

    ref: Ref
    delta: float
    now: float
    next_reset: float | None
    #: For a counter that may not exist yet (the gateway budget): its period, to create it.
    budget_duration: str | None = None
    budget_reset_at: float | None = None


class SpendLedger(Protocol):
    async def charge(self, charges: Sequence[Charge]) -> dict[Ref, tuple[float, float | None]]:
        """Add each delta atomically; returns {ref: (spend, budget_reset_at)} now stored."""
        ...

    async def set_spend(self, ref: Ref, spend: float) -> None:
        """An admin setting spend outright (e.g. back to 0)."""
        ...

    async def save_global(self, spend: float, budget_duration: str | None, reset_at: float | None) -> None:
        """Record the gateway budget's period at start-up (its config may have changed)."""
        ...


class RateCounter(Protocol):
    """Sliding-window counters. `acquire` admits a request against every subject at once or
    raises RateLimited naming the first limit reached; `release` and `add_tokens` never raise
    and never wait (a networked backend sends them in the background)."""

    async def acquire(self, subjects: Sequence[Any]) -> None:
        """subjects: objects with `ref`, `label`, `rpm_limit`, `tpm_limit`,
        `max_parallel_requests` (admission.Subject)."""
        ...

    def release(self, refs: Sequence[Ref]) -> None: ...

    def add_tokens(self, subjects: Sequence[Any], tokens: int) -> None: ...

    def in_flight(self, ref: Ref) -> int: ...

    def forget(self, ref: Ref) -> None: ...
