"""Sign-in for the report's admin actions at /ui: a short-lived admin token, signed, stateless.

The browser signs in once (the master key, or ui_username/ui_password) and gets a token it
keeps in sessionStorage and sends as `Authorization: Bearer` to the admin API; the master key
itself is not kept in the browser. No cookies, so no CSRF: another site's page cannot make the
browser send the header.

Token: `shin-ui.<payload>.<signature>`, payload = base64url JSON {"exp", "sub", "n"},
signature = HMAC-SHA256 over "shin-ui.<payload>" with a key derived from the master key. Any
worker or host with the same master key verifies it without shared state; changing the master
key ends every session. Without a master key the gateway is open: nothing to sign in to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

PREFIX = "shin-ui."
#: Domain separation: the session key is never the master key itself.
KEY_LABEL = b"shin-gateway ui session v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    token: str
    subject: str
    expires_at: int


class UiSessions:
    def __init__(self, master_key: str | None, username: str | None, password: str | None,
                 lifetime: float) -> None:
        self._key = hmac.new(master_key.encode("utf-8"), KEY_LABEL, hashlib.sha256).digest() if master_key else None
        self._master = master_key.encode("utf-8") if master_key else None
        self._username = (username or "").encode("utf-8")
        self._password = (password or "").encode("utf-8")
        self.lifetime = lifetime

    @property
    def enabled(self) -> bool:
        return self._key is not None

    @property
    def passwords(self) -> bool:
        """Whether ui_username/ui_password may sign in (both set, and a master key to sign with)."""
        return self.enabled and bool(self._username and self._password)

    def sign_in(self, *, master_key: str | None = None, username: str | None = None,
                password: str | None = None, now: float | None = None) -> Session | None:
        """A new session for valid credentials, else None."""
        if self._key is None or self._master is None:
            return None
        if master_key is not None:
            if not hmac.compare_digest(master_key.encode("utf-8"), self._master):
                return None
            subject = "master_key"
        elif username is not None and password is not None and self.passwords:
            # Both compared, always: no early exit tells which one was wrong.
            user_ok = hmac.compare_digest(username.encode("utf-8"), self._username)
            password_ok = hmac.compare_digest(password.encode("utf-8"), self._password)
            if not (user_ok and password_ok):
                return None
            subject = f"ui:{username}"
        else:
            return None
        expires = int((time.time() if now is None else now) + self.lifetime)
        payload = _b64(json.dumps({"exp": expires, "sub": subject, "n": secrets.token_hex(8)},
                                  separators=(",", ":")).encode("utf-8"))
        body = PREFIX + payload
        return Session(f"{body}.{self._sign(body)}", subject, expires)

    def verify(self, token: str | None, now: float | None = None) -> bool:
        if self._key is None or not token or not token.startswith(PREFIX):
            return False
        body, _, signature = token.rpartition(".")
        if not body.startswith(PREFIX) or not hmac.compare_digest(signature, self._sign(body)):
            return False
        try:
            claims = json.loads(_unb64(body[len(PREFIX):]))
            expires = float(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return False
        return (time.time() if now is None else now) < expires

    def _sign(self, body: str) -> str:
        assert self._key is not None
        return _b64(hmac.new(self._key, body.encode("ascii", "replace"), hashlib.sha256).digest())
