"""Run-time model changes as the admin state holds them (kind `model`, table `models`).

One record per deployment id, of two origins:

  api     a deployment added by /model/new: `litellm_params` and `model_info` are the whole
          deployment as sent (an api_key may be `os.environ/NAME`, resolved when applied)
  config  changes to a deployment of config.yaml: `litellm_params`/`model_info` hold only the
          fields /model/update changed (laid over config.yaml's, so no secret resolved from the
          environment is ever copied into keys.db); `model_name` set only when renamed

`enabled` is the deployment's on/off switch for both. Records travel through the EntityStore
like keys, so every worker and host applies them to its router (admin/deployments.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .base import MODEL

API = "api"
CONFIG = "config"


@dataclass(slots=True, eq=False)
class ModelRecord:
    KIND: ClassVar[str] = MODEL

    model_id: str
    model_name: str | None = None
    litellm_params: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)
    origin: str = API
    enabled: bool = True
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def ident(self) -> str:
        return self.model_id

    @property
    def label(self) -> str:
        return self.model_name or self.model_id
