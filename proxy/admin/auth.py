"""The authenticator of a gateway with virtual keys: the master key, then keys.db's keys.

Known keys are checked against the registry in memory (no SQLite read); error messages name a
key by its alias or display form, never by the raw key, because the middleware logs them.
A blocked key, or a key of a blocked user or team, is refused like an unknown one (401).
"""

from __future__ import annotations

import time

from ..errors import AuthError
from ..server.auth import MasterKeyAuth, Principal, hash_key
from .records import iso
from .service import AdminService


class KeyAuth:
    def __init__(self, master: MasterKeyAuth, service: AdminService) -> None:
        self.master = master
        self.service = service

    async def authenticate(self, token: str | None) -> Principal:
        if token is None or (not self.master.open and self.master.is_master(token)):
            return await self.master.authenticate(token)
        rec = await self.service.lookup(hash_key(token))
        if rec is None:
            if self.master.open:
                return await self.master.authenticate(token)
            raise AuthError("Invalid API key: no such key (unknown or deleted).")
        if rec.blocked:
            raise AuthError(f"Authentication Error - key `{rec.label}` is blocked.")
        now = time.time()
        if rec.expired(now):
            raise AuthError(
                f"Authentication Error - Expired Key. Key `{rec.label}` expired at {iso(rec.expires_at)}, "
                f"current time {iso(now)}."
            )
        registry = self.service.registry
        team = registry.teams.get(rec.team_id) if rec.team_id else None
        if team is not None and team.blocked:
            raise AuthError(f"Team={team.team_id} is blocked. Update via `/team/unblock` if you're an admin.")
        user = registry.users.get(rec.user_id) if rec.user_id else None
        if user is not None and user.blocked:
            raise AuthError(f"User={user.user_id} is blocked.")
        return rec.principal
