"""model_name wildcards: `*`, `openai/*`, `gpt-4o*` serve any model name they match.

The part the `*` matched fills the `*` of litellm_params.model, so `model_name: "openai/*"`
with `model: openai/*` sends `openai/gpt-4o` upstream as `gpt-4o`, and `model_name: "*"` with
`model: openai/*` sends any name to OpenAI as asked. Each concrete name is resolved (and priced
from genai-prices) the first time it is asked for, and kept in a bounded cache.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Callable

from ..accounting.pricing import Price
from ..settings import Deployment
from .providers import split_model
from .target import Target

#: Concrete (deployment, model name) targets kept; clients choose the names, so it is bounded.
CACHE_SIZE = 1024


def is_pattern(model_name: str) -> bool:
    return "*" in model_name


def compile_pattern(model_name: str) -> re.Pattern[str]:
    return re.compile("^" + "(.*)".join(re.escape(part) for part in model_name.split("*")) + "$")


def specificity(model_name: str) -> tuple[int, int]:
    """Longer literal text first, then fewer stars: `openai/gpt-4o*` beats `openai/*` beats `*`."""
    return (-len(model_name.replace("*", "")), model_name.count("*"))


def fill(model: str, captured: str) -> str:
    """litellm_params.model for a concrete name: its `*` replaced by what the pattern matched."""
    return model.replace("*", captured, 1) if "*" in model else model


class ConcreteTargets:
    """Targets for names a wildcard deployment matched, built on first use (LRU-bounded)."""

    def __init__(self, pricer: Callable[[Deployment], Price], size: int = CACHE_SIZE) -> None:
        self._pricer = pricer
        self._size = size
        self._cache: OrderedDict[tuple[str, str], Target] = OrderedDict()

    def get(self, target: Target, captured: str) -> Target:
        key = (target.deployment_id, captured)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        params = target.deployment.litellm_params
        model = fill(params.model, captured)
        deployment = dataclasses.replace(
            target.deployment, litellm_params=dataclasses.replace(params, model=model)
        )
        _, upstream = split_model(model)
        concrete = dataclasses.replace(
            target, deployment=deployment, upstream_model=upstream, price=self._pricer(deployment)
        )
        self._cache[key] = concrete
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return concrete

    def forget(self, deployment_id: str) -> None:
        for key in [k for k in self._cache if k[0] == deployment_id]:
            del self._cache[key]
