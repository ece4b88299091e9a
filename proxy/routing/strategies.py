"""The order in which a model's deployments are tried: LiteLLM's routing strategies.

  simple-shuffle  a random pick, weighted by `weight`, else `rpm`, else `tpm` when the first
                  deployment sets one (as LiteLLM reads them); the rest follow in weighted
                  random order, so a retry lands elsewhere
  least-busy      fewest requests in flight first (ties at random)

LiteLLM's other strategies (usage-, latency-, cost-based) need shared usage tracking we do not
keep; they fall back to simple-shuffle with one warning.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

from .cooldowns import DeploymentState
from .target import Target

log = logging.getLogger("proxy.routing")

Candidate = tuple[Target, DeploymentState]
Strategy = Callable[[Sequence[Candidate]], list[Target]]

SIMPLE_SHUFFLE = "simple-shuffle"
LEAST_BUSY = "least-busy"
LITELLM_STRATEGIES = frozenset({
    "usage-based-routing", "usage-based-routing-v2", "latency-based-routing",
    "cost-based-routing", "provider-budget-routing",
})


def _weight_key(first: Target) -> str | None:
    params = first.deployment.litellm_params
    for name in ("weight", "rpm", "tpm"):
        if getattr(params, name) is not None:
            return name
    return None


def simple_shuffle(candidates: Sequence[Candidate]) -> list[Target]:
    targets = [target for target, _ in candidates]
    if len(targets) < 2:
        return targets
    key = _weight_key(targets[0])
    if key is None:
        return random.sample(targets, len(targets))
    weights = [float(getattr(t.deployment.litellm_params, key) or 0) for t in targets]
    ordered = []
    while targets:
        if sum(weights) <= 0:
            ordered.extend(random.sample(targets, len(targets)))
            break
        i = random.choices(range(len(targets)), weights=weights)[0]
        ordered.append(targets.pop(i))
        weights.pop(i)
    return ordered


def least_busy(candidates: Sequence[Candidate]) -> list[Target]:
    shuffled = random.sample(list(candidates), len(candidates))
    return [target for target, _ in sorted(shuffled, key=lambda c: c[1].in_flight)]


STRATEGIES: dict[str, Strategy] = {SIMPLE_SHUFFLE: simple_shuffle, LEAST_BUSY: least_busy}


def strategy(name: str) -> Strategy:
    """The strategy called `name`; unsupported ones warn (here, once per router) and shuffle."""
    found = STRATEGIES.get(name)
    if found is not None:
        return found
    kind = "LiteLLM's" if name in LITELLM_STRATEGIES else "unknown"
    log.warning(
        "router_settings.routing_strategy: %s strategy %r is not supported by this gateway; "
        "using simple-shuffle", kind, name,
    )
    return simple_shuffle
