"""Credentials of deployments added at run time (/model/new, /model/update), encrypted at rest.

keys.db is backed up, copied to report hosts and mirrored to Redis, so an upstream api_key sent
to /model/new is stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`) and
decrypted only when the deployment is applied to the router. The key is derived, as LiteLLM
does, from LITELLM_SALT_KEY when set, else from the master key: rotating the master key without
a salt key makes stored credentials unreadable (those deployments are then skipped with a
warning until they are sent again). `os.environ/NAME` references are not secrets and are
stored as they are. A gateway with neither key refuses raw credentials instead of storing them
in the clear.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ..config import ENV_PREFIX
from ..errors import BadRequest, ConfigError

#: litellm_params whose value is a credential.
SECRET_PARAMS = frozenset({"api_key", "azure_ad_token"})
#: Marks an encrypted value; what follows is a Fernet token.
PREFIX = "encrypted:"
SALT_ENV = "LITELLM_SALT_KEY"


class SecretBox:
    def __init__(self, secret: str | None) -> None:
        self._fernet = (
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode("utf-8")).digest()))
            if secret else None
        )

    @classmethod
    def for_gateway(cls, master_key: str | None, environment: Mapping[str, str]) -> SecretBox:
        return cls(environment.get(SALT_ENV) or master_key)

    def seal(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """litellm_params with every credential encrypted (already sealed ones kept)."""
        out = dict(params)
        for name, value in params.items():
            if name in SECRET_PARAMS and isinstance(value, str) and value:
                out[name] = self._seal_one(name, value)
            elif name == "extra_headers" and isinstance(value, dict):
                # A header may carry a credential (Authorization, api-key): all values sealed.
                out[name] = {h: self._seal_one(f"extra_headers.{h}", str(v)) for h, v in value.items()}
        return out

    def open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """litellm_params with credentials decrypted; ConfigError when one cannot be."""
        out = dict(params)
        for name, value in params.items():
            if isinstance(value, str) and value.startswith(PREFIX):
                out[name] = self._open_one(name, value)
            elif name == "extra_headers" and isinstance(value, dict):
                out[name] = {h: self._open_one(f"extra_headers.{h}", v) if isinstance(v, str) else v
                             for h, v in value.items()}
        return out

    def _seal_one(self, name: str, value: str) -> str:
        if value.startswith((PREFIX, ENV_PREFIX)):
            return value
        if self._fernet is None:
            raise BadRequest(
                f"`litellm_params.{name}` would be stored in the clear: set general_settings."
                f"master_key or {SALT_ENV} (the key it is encrypted with), or send "
                f"os.environ/NAME and set the variable on every gateway.",
                param=f"litellm_params.{name}",
            )
        return PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def _open_one(self, name: str, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        if self._fernet is None:
            raise ConfigError(f"litellm_params.{name} is encrypted and this gateway has no master_key "
                              f"or {SALT_ENV} to decrypt it")
        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ConfigError(
                f"litellm_params.{name} was encrypted with another key (the master key changed?); "
                f"send the deployment again, or set {SALT_ENV} to the key it was stored with"
            ) from None
