"""Users, teams, team members, end users and budget tiers as the gateway holds them in memory,
each with its LiteLLM response shape (`info()`).

Like keys, records are mutated in place on update (spend charged meanwhile is kept); settings
come from keys.db, spend from the spend ledger.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .base import END_USER, MEMBER, TEAM, TIER, USER, iso, member_ident


def _budget_and_limits(rec: UserRecord | TeamRecord) -> dict[str, Any]:
    """The fields users and teams share in LiteLLM's rows: models, budget, limits, state."""
    return {
        "models": list(rec.models),
        "spend": rec.spend,
        "max_budget": rec.max_budget,
        "soft_budget": rec.soft_budget,
        "budget_duration": rec.budget_duration,
        "budget_reset_at": iso(rec.budget_reset_at),
        "rpm_limit": rec.rpm_limit,
        "tpm_limit": rec.tpm_limit,
        "max_parallel_requests": rec.max_parallel_requests,
        "metadata": rec.metadata,
        "blocked": rec.blocked,
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }


@dataclass(slots=True, eq=False)
class UserRecord:
    KIND: ClassVar[str] = USER

    user_id: str
    user_alias: str | None = None
    user_email: str | None = None
    user_role: str | None = None
    models: tuple[str, ...] = ()
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    spend: float = 0.0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def ident(self) -> str:
        return self.user_id

    @property
    def label(self) -> str:
        return self.user_id

    def info(self, teams: list[str] | None = None) -> dict[str, Any]:
        """LiteLLM's user row (LiteLLM_UserTable)."""
        return {
            **self.extras,
            "user_id": self.user_id,
            "user_alias": self.user_alias,
            "user_email": self.user_email,
            "user_role": self.user_role,
            "teams": teams or [],
            **_budget_and_limits(self),
        }


@dataclass(slots=True, eq=False)
class TeamRecord:
    KIND: ClassVar[str] = TEAM

    team_id: str
    team_alias: str | None = None
    models: tuple[str, ...] = ()
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    spend: float = 0.0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False
    model_aliases: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def ident(self) -> str:
        return self.team_id

    @property
    def label(self) -> str:
        return self.team_alias or self.team_id

    def info(self, members: list[MemberRecord] | None = None) -> dict[str, Any]:
        """LiteLLM's team row (LiteLLM_TeamTable)."""
        members = members or []
        return {
            **self.extras,
            "team_id": self.team_id,
            "team_alias": self.team_alias,
            "model_aliases": self.model_aliases or None,
            "admins": [m.user_id for m in members if m.role == "admin"],
            "members": [m.user_id for m in members],
            "members_with_roles": [m.member() for m in members],
            **_budget_and_limits(self),
        }


@dataclass(slots=True, eq=False)
class MemberRecord:
    """A user within a team; `max_budget_in_team` caps what the user spends through the team."""

    KIND: ClassVar[str] = MEMBER

    team_id: str
    user_id: str
    role: str = "user"
    user_email: str | None = None
    max_budget_in_team: float | None = None
    spend: float = 0.0
    budget_reset_at: float | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def ident(self) -> str:
        return member_ident(self.team_id, self.user_id)

    @property
    def label(self) -> str:
        return f"{self.user_id} in Team={self.team_id}"

    @property
    def max_budget(self) -> float | None:
        return self.max_budget_in_team

    @property
    def budget_duration(self) -> str | None:
        return None

    def member(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "user_email": self.user_email, "role": self.role}

    def info(self) -> dict[str, Any]:
        """LiteLLM's team membership (LiteLLM_TeamMembership)."""
        return {
            "team_id": self.team_id,
            "user_id": self.user_id,
            "spend": self.spend,
            "budget_id": None,
            "litellm_budget_table": (
                {"max_budget": self.max_budget_in_team} if self.max_budget_in_team is not None else None
            ),
        }


@dataclass(slots=True, eq=False)
class BudgetTier:
    """A row of /budget/new: limits that end users share by pointing to its budget_id."""

    KIND: ClassVar[str] = TIER

    budget_id: str
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def ident(self) -> str:
        return self.budget_id

    def info(self) -> dict[str, Any]:
        """LiteLLM's budget row (LiteLLM_BudgetTable)."""
        return {
            **self.extras,
            "budget_id": self.budget_id,
            "max_budget": self.max_budget,
            "soft_budget": self.soft_budget,
            "budget_duration": self.budget_duration,
            "rpm_limit": self.rpm_limit,
            "tpm_limit": self.tpm_limit,
            "max_parallel_requests": self.max_parallel_requests,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True, eq=False)
class EndUserRecord:
    """The request body's `user`, once created (LiteLLM's customer). Its limits are its budget
    tier's (`budget_id`); its spend and budget period are its own."""

    KIND: ClassVar[str] = END_USER

    user_id: str
    alias: str | None = None
    blocked: bool = False
    budget_id: str | None = None
    spend: float = 0.0
    budget_reset_at: float | None = None
    allowed_model_region: str | None = None
    default_model: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    #: The tier `budget_id` names, linked by the registry (never stored).
    tier: BudgetTier | None = field(default=None, compare=False)

    @property
    def ident(self) -> str:
        return self.user_id

    @property
    def label(self) -> str:
        return self.user_id

    @property
    def max_budget(self) -> float | None:
        return self.tier.max_budget if self.tier else None

    @property
    def budget_duration(self) -> str | None:
        return self.tier.budget_duration if self.tier else None

    @property
    def rpm_limit(self) -> int | None:
        return self.tier.rpm_limit if self.tier else None

    @property
    def tpm_limit(self) -> int | None:
        return self.tier.tpm_limit if self.tier else None

    @property
    def max_parallel_requests(self) -> int | None:
        return self.tier.max_parallel_requests if self.tier else None

    def info(self) -> dict[str, Any]:
        """LiteLLM's end-user row (LiteLLM_EndUserTable) with its budget table."""
        return {
            **self.extras,
            "user_id": self.user_id,
            "alias": self.alias,
            "blocked": self.blocked,
            "spend": self.spend,
            "budget_id": self.budget_id,
            "budget_reset_at": iso(self.budget_reset_at),
            "allowed_model_region": self.allowed_model_region,
            "default_model": self.default_model,
            "litellm_budget_table": self.tier.info() if self.tier else None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
