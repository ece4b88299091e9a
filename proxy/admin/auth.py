"""The authenticator of a gateway with virtual keys: the master key, then keys.db's keys.

Known keys are checked against the in-memory cache (no SQLite read); error messages name a
key by its alias or display form, never by the raw key, because the middleware logs them.
"""

from __future__ import annotations

import time

from ..errors import AuthError
from ..server.auth import MasterKeyAuth, Principal, hash_key
from .record import iso
from .service import KeyService


class KeyAuth:
    def __init__(self, master: MasterKeyAuth, service: KeyService) -> None:
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
        return rec.principal
