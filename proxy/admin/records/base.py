"""What every admin entity shares: names for the kinds of entity, references to one entity,
times as keys.db stores them, and the budget attributes the budget code reads.

An entity is referred to as `Ref(kind, ident)` wherever it crosses an interface (spend ledger,
rate-limit counter): the same pair names a row in SQLite and would name a hash in Redis.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple, Protocol

KEY = "key"
USER = "user"
TEAM = "team"
MEMBER = "member"  # a user within a team (max_budget_in_team)
END_USER = "end_user"  # LiteLLM's "customer": the request body's `user`
TIER = "budget"  # a /budget/new row that end users point to with budget_id
GLOBAL = "global"  # litellm_settings.max_budget: the whole gateway
MODEL = "model"  # a deployment added at run time, or run-time changes to a config one

#: Joins a member's team and user id into one ident; ids are printable text, never this.
SEP = "\x1f"


class Ref(NamedTuple):
    kind: str
    ident: str


def member_ident(team_id: str, user_id: str) -> str:
    return f"{team_id}{SEP}{user_id}"


def split_member(ident: str) -> tuple[str, str]:
    team_id, _, user_id = ident.partition(SEP)
    return team_id, user_id


class Budgeted(Protocol):
    """A spend counter with an optional cap and period (keys, users, teams, end users...)."""

    spend: float
    budget_reset_at: float | None

    @property
    def max_budget(self) -> float | None: ...

    @property
    def budget_duration(self) -> str | None: ...


class Limited(Protocol):
    """Rate limits of one entity; None means no limit."""

    @property
    def rpm_limit(self) -> int | None: ...

    @property
    def tpm_limit(self) -> int | None: ...

    @property
    def max_parallel_requests(self) -> int | None: ...


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch(text: str | None) -> float | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
