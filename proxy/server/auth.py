"""Who is calling: the master key here; virtual keys plug in through the same interface."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from ..errors import AuthError

log = logging.getLogger("proxy.auth")


def hash_key(raw: str) -> str:
    """SHA-256 hex of a key: the only form in which a key is ever stored or logged."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Azure-style clients and LiteLLM's UI send the key in these headers.
    return request.headers.get("api-key") or request.headers.get("x-api-key") or None


@dataclass(frozen=True)
class Principal:
    """The caller, as far as logging, budgets and permissions care."""

    key_hash: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    models: tuple[str, ...] = ()  # empty: every model
    is_admin: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def may_use(self, model: str) -> bool:
        return not self.models or model in self.models


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

    @property
    def open(self) -> bool:
        return self._master is None

    def is_master(self, token: str | None) -> bool:
        if self._master is None:
            return True
        return token is not None and hmac.compare_digest(token.encode("utf-8"), self._master)

    async def authenticate(self, token: str | None) -> Principal:
        if self.is_master(token):
            return self._master_principal
        raise AuthError(
            "Invalid API key." if token else "Missing API key: send Authorization: Bearer <key>."
        )
