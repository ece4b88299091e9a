"""Which models an allow-list (a key's, team's or user's `models`) covers, as LiteLLM decides:

- empty, `*` or `all-proxy-models`: every model;
- a model_name: that model;
- an access group (`model_info.access_groups` of a deployment in config.yaml): every model
  with a deployment in the group;
- a wildcard (`openai/*`, `gpt-4o*`): `*` matches any text, tried against the model name and
  against its provider-qualified names (`openai/gpt-4o-mini` for a deployment whose
  `litellm_params.model` is `openai/gpt-4o-mini`), so `openai/*` covers the OpenAI models.

Built once from config at start-up; matching is in memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from ..server.auth import ALL_MODELS
from ..settings import Deployment


@lru_cache(maxsize=1024)
def _pattern(wildcard: str) -> re.Pattern[str]:
    # LiteLLM turns `*` into `.*` and leaves the rest as regex; here the rest is literal, so a
    # `.` in `gpt-4.1*` means a dot.
    return re.compile("^" + ".*".join(re.escape(part) for part in wildcard.split("*")) + "$")


def wildcard_match(wildcard: str, name: str) -> bool:
    return "*" in wildcard and _pattern(wildcard).match(name) is not None


class ModelAccess:
    """A ModelMatcher (server/auth.py) that knows the config's access groups and providers."""

    def __init__(self, deployments: Sequence[Deployment]) -> None:
        #: access group -> model_names (possibly wildcard model_names) in it
        self.groups: dict[str, set[str]] = {}
        #: model_name -> its provider-qualified names
        self.qualified: dict[str, set[str]] = {}
        for d in deployments:
            for group in d.model_info.access_groups:
                self.groups.setdefault(group, set()).add(d.model_name)
            provider, sep, name = d.litellm_params.model.partition("/")
            if not sep:
                provider, name = "openai", d.litellm_params.model
            names = self.qualified.setdefault(d.model_name, set())
            names.add(f"{provider}/{name}")
            if "/" not in d.model_name:
                names.add(f"{provider}/{d.model_name}")

    def allows(self, allowed: tuple[str, ...], model: str) -> bool:
        if not allowed or model in allowed or not ALL_MODELS.isdisjoint(allowed):
            return True
        for entry in allowed:
            members = self.groups.get(entry)
            if members is not None:
                if model in members or any(wildcard_match(m, model) for m in members):
                    return True
            elif "*" in entry and (
                wildcard_match(entry, model)
                or any(wildcard_match(entry, q) for q in self.qualified.get(model, ()))
            ):
                return True
        return False
