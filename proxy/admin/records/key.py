"""One virtual key as the gateway holds it in memory, and the forms it takes on the outside.

The raw key exists only in the /key/generate (or /key/regenerate) response and the CLI's
`create` output; from then on a key is its SHA-256 (`key_hash`) and its display form (`sk-…abcd`).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...server.auth import EXACT, ModelMatcher, ModelScope, Principal, hash_key
from .base import KEY, iso

KEY_PREFIX = "sk-"
_HASH = re.compile(r"^[0-9a-f]{64}$")
#: LiteLLM's way of saying "the models of my team" in a key's `models`.
ALL_TEAM_MODELS = "all-team-models"


def new_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def display_name(raw: str) -> str:
    """`sk-…abcd`: enough to tell keys apart in a list, useless to an attacker."""
    return f"{KEY_PREFIX}…{raw[-4:]}"


def key_hash_of(ref: str) -> str:
    """A key as clients name it (the raw `sk-…` key or its hash, as LiteLLM accepts) → hash."""
    ref = ref.strip()
    return ref if _HASH.match(ref) else hash_key(ref)


@dataclass(slots=True, eq=False)
class KeyRecord:
    """A row of `keys`. Mutated in place on update so in-flight spend is never lost."""

    KIND: ClassVar[str] = KEY

    key_hash: str
    key_name: str
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    models: tuple[str, ...] = ()
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    spend: float = 0.0
    expires_at: float | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False
    aliases: dict[str, str] = field(default_factory=dict)
    soft_budget: float | None = None
    enforced_params: tuple[str, ...] = ()
    model_rpm_limit: dict[str, int] = field(default_factory=dict)
    model_tpm_limit: dict[str, int] = field(default_factory=dict)
    temp_budget_increase: float | None = None
    temp_budget_expiry: float | None = None
    #: LiteLLM key fields this gateway stores and returns but does not act on (see fields.py).
    extras: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    principal: Principal = field(init=False)

    def __post_init__(self) -> None:
        self.refresh_principal()

    @property
    def ident(self) -> str:
        return self.key_hash

    @property
    def label(self) -> str:
        """How messages and logs name this key: its alias, else its display form."""
        return self.key_alias or self.key_name

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def effective_max_budget(self, now: float) -> float | None:
        """max_budget plus a temporary increase that has not expired yet (LiteLLM's
        temp_budget_increase / temp_budget_expiry)."""
        if self.max_budget is None:
            return None
        if self.temp_budget_increase and self.temp_budget_expiry and now < self.temp_budget_expiry:
            return self.max_budget + self.temp_budget_increase
        return self.max_budget

    def refresh_principal(
        self,
        *,
        team_models: tuple[str, ...] | None = None,
        team_aliases: dict[str, str] | None = None,
        user_models: tuple[str, ...] | None = None,
        matcher: ModelMatcher = EXACT,
    ) -> None:
        """Rebuild the cached Principal after any change to the key, its team or its user.

        The team's list bounds the key's: both must allow the model. A key whose `models` is
        ["all-team-models"] is bound by its team's list alone.
        """
        scopes = []
        own = tuple(m for m in self.models if m != ALL_TEAM_MODELS)
        if own and not (ALL_TEAM_MODELS in self.models and team_models is not None):
            scopes.append(ModelScope("key", own))
        if team_models:
            scopes.append(ModelScope("team", team_models))
        if user_models:
            scopes.append(ModelScope("user", user_models))
        self.principal = Principal(
            key_hash=self.key_hash,
            key_alias=self.key_alias,
            user_id=self.user_id,
            team_id=self.team_id,
            models=own,
            is_admin=False,
            metadata=dict(self.metadata),
            aliases={**(team_aliases or {}), **self.aliases},
            scopes=tuple(scopes),
            matcher=matcher,
        )

    def info(self) -> dict[str, Any]:
        """LiteLLM's key object (`/key/info` "info", `/key/list?return_full_object=true`)."""
        return {
            **self.extras,
            "token": self.key_hash,
            "key_name": self.key_name,
            "key_alias": self.key_alias,
            "user_id": self.user_id,
            "team_id": self.team_id,
            "models": list(self.models),
            "spend": self.spend,
            "max_budget": self.max_budget,
            "soft_budget": self.soft_budget,
            "budget_duration": self.budget_duration,
            "budget_reset_at": iso(self.budget_reset_at),
            "expires": iso(self.expires_at),
            "rpm_limit": self.rpm_limit,
            "tpm_limit": self.tpm_limit,
            "max_parallel_requests": self.max_parallel_requests,
            "model_rpm_limit": self.model_rpm_limit or None,
            "model_tpm_limit": self.model_tpm_limit or None,
            "metadata": self._metadata(),
            "aliases": self.aliases,
            "enforced_params": list(self.enforced_params) or None,
            "blocked": self.blocked,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    def _metadata(self) -> dict[str, Any]:
        # LiteLLM keeps the temporary increase inside the key's metadata.
        if self.temp_budget_increase is None:
            return self.metadata
        return {
            **self.metadata,
            "temp_budget_increase": self.temp_budget_increase,
            "temp_budget_expiry": iso(self.temp_budget_expiry),
        }
