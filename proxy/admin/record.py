"""One virtual key as the gateway holds it in memory, and the forms it takes on the outside.

The raw key exists only in the /key/generate response (and the CLI's `create` output); from
then on a key is its SHA-256 (`key_hash`) and its display form (`sk-…abcd`).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..server.auth import Principal, hash_key

KEY_PREFIX = "sk-"
_HASH = re.compile(r"^[0-9a-f]{64}$")
#: LiteLLM's way of saying "every model" in a key's `models`.
ALL_MODELS = "all-proxy-models"


def new_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def display_name(raw: str) -> str:
    """`sk-…abcd`: enough to tell keys apart in a list, useless to an attacker."""
    return f"{KEY_PREFIX}…{raw[-4:]}"


def key_hash_of(ref: str) -> str:
    """A key as clients name it (the raw `sk-…` key or its hash, as LiteLLM accepts) → hash."""
    ref = ref.strip()
    return ref if _HASH.match(ref) else hash_key(ref)


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


@dataclass(slots=True, eq=False)
class KeyRecord:
    """A row of `keys`. Mutated in place on update so in-flight spend is never lost."""

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
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    principal: Principal = field(init=False)

    def __post_init__(self) -> None:
        self.refresh_principal()

    def refresh_principal(self) -> None:
        """Rebuild the cached Principal after any change to the key's settings."""
        models = () if ALL_MODELS in self.models else self.models
        self.principal = Principal(
            key_hash=self.key_hash,
            key_alias=self.key_alias,
            user_id=self.user_id,
            team_id=self.team_id,
            models=models,
            is_admin=False,
            metadata=dict(self.metadata),
        )

    @property
    def label(self) -> str:
        """How messages and logs name this key: its alias, else its display form."""
        return self.key_alias or self.key_name

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def info(self) -> dict[str, Any]:
        """LiteLLM's key object (`/key/info` "info", `/key/list?return_full_object=true`)."""
        return {
            "token": self.key_hash,
            "key_name": self.key_name,
            "key_alias": self.key_alias,
            "user_id": self.user_id,
            "team_id": self.team_id,
            "models": list(self.models),
            "spend": self.spend,
            "max_budget": self.max_budget,
            "budget_duration": self.budget_duration,
            "budget_reset_at": iso(self.budget_reset_at),
            "expires": iso(self.expires_at),
            "rpm_limit": self.rpm_limit,
            "tpm_limit": self.tpm_limit,
            "max_parallel_requests": self.max_parallel_requests,
            "metadata": self.metadata,
            "blocked": self.blocked,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
