"""Who is calling: the master key here; virtual keys plug in through the same interface."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from ..errors import AuthError, ModelAccessDenied

log = logging.getLogger("proxy.auth")


def hash_key(raw: str) -> str:
    """SHA-256 hex of a key: the only form in which a key is ever stored or logged."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return _text(token.strip())
    # Azure-style clients and LiteLLM's UI send the key in these headers.
    other = request.headers.get("api-key") or request.headers.get("x-api-key")
    return _text(other) if other else None


def _text(token: str) -> str:
    """A header value as valid text: aiohttp keeps bytes that are not UTF-8 as lone surrogates,
    which no key contains and which hashing (UTF-8) would raise on."""
    if token.isascii():
        return token
    return token.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


#: LiteLLM's names for "every model" in a `models` list.
ALL_MODELS = frozenset({"*", "all-proxy-models"})


class ModelMatcher(Protocol):
    """Whether `model` is covered by an allow-list (wildcards and access groups, admin/access.py)."""

    def allows(self, allowed: tuple[str, ...], model: str) -> bool: ...


class ExactMatcher:
    """Names only: an empty list or "*" allows every model."""

    def allows(self, allowed: tuple[str, ...], model: str) -> bool:
        return not allowed or model in allowed or not ALL_MODELS.isdisjoint(allowed)


EXACT = ExactMatcher()


@dataclass(frozen=True)
class ModelScope:
    """One allow-list a request must pass: the key's, its team's or its user's."""

    kind: str  # "key", "team" or "user": names the error type, as LiteLLM does
    models: tuple[str, ...]


@dataclass(frozen=True)
class Principal:
    """The caller, as far as logging, budgets and permissions care."""

    key_hash: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    models: tuple[str, ...] = ()  # the key's own list; empty: every model
    is_admin: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Model aliases (the key's `aliases` over its team's `model_aliases`): asked → routed.
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: Allow-lists checked in order; default: the key's `models` alone.
    scopes: tuple[ModelScope, ...] | None = None
    matcher: ModelMatcher = EXACT

    def route(self, model: str, group_of: Callable[[str], str | None] | None = None) -> str:
        """The model to route a request for `model` to, or ModelAccessDenied (401).

        Access is granted when the name asked for, the model it aliases, or the model group the
        router resolves it to (`group_of`: router_settings.model_group_alias, wildcards) is
        allowed by every scope, as LiteLLM checks an alias and its target alike.
        """
        target = self.aliases.get(model, model)
        scopes = self._scopes()
        if not scopes:
            return target
        names = [model] if target == model else [model, target]
        group = group_of(target) if group_of is not None else None
        if group is not None and group not in names:
            names.append(group)
        for scope in scopes:
            if not any(self.matcher.allows(scope.models, name) for name in names):
                raise ModelAccessDenied(
                    f"{scope.kind} not allowed to access model. This {scope.kind} can only access "
                    f"models={list(scope.models)}. Tried to access {model}",
                    kind=scope.kind,
                )
        return target

    def may_use(self, model: str) -> bool:
        try:
            self.route(model)
        except ModelAccessDenied:
            return False
        return True

    def _scopes(self) -> tuple[ModelScope, ...]:
        if self.scopes is not None:
            return self.scopes
        return (ModelScope("key", self.models),) if self.models else ()


OPEN_ACCESS = Principal(is_admin=True, key_alias=None)


class Authenticator(Protocol):
    async def authenticate(self, token: str | None) -> Principal:
        """Return the caller or raise AuthError (401)."""
        ...


class MasterKeyAuth:
    """Bearer master key; with none configured the gateway is open (start-up says so)."""

    def __init__(self, master_key: str | None) -> None:
        self._master = master_key.encode("utf-8") if master_key else None
        self._master_principal = (
            Principal(key_hash=hash_key(master_key), key_alias="master", is_admin=True)
            if master_key
            else OPEN_ACCESS
        )
        #: Also accepted as the master key: /ui's signed admin sessions (server/ui_session.py).
        self._sessions: Callable[[str], bool] | None = None

    def accept_sessions(self, verify: Callable[[str], bool]) -> None:
        self._sessions = verify

    @property
    def open(self) -> bool:
        return self._master is None

    def is_master(self, token: str | None) -> bool:
        if self._master is None:
            return True
        if token is None:
            return False
        if hmac.compare_digest(token.encode("utf-8"), self._master):
            return True
        return self._sessions is not None and self._sessions(token)

    async def authenticate(self, token: str | None) -> Principal:
        if self.is_master(token):
            return self._master_principal
        raise AuthError(
            "Invalid API key." if token else "Missing API key: send Authorization: Bearer <key>."
        )
