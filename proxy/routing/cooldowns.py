"""Per-deployment health as the router keeps it: in-flight requests, outcomes, cooldowns.

A deployment that keeps failing is skipped for a while, as LiteLLM's router does: more than
`allowed_fails` failures, each within `cooldown_time` of the one before, put it in cooldown
for `cooldown_time` seconds. Only failures that say something about the deployment count
(unreachable, timed out, 401/403/404/408/429/5xx), never a client's bad request. A model with
a single deployment is never cooled down: skipping it could only turn errors into refusals.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

#: Upstream statuses that count against a deployment (LiteLLM cools down on these too).
DEPLOYMENT_STATUSES = frozenset({401, 403, 404, 408, 429})


def counts_against_deployment(status: int) -> bool:
    """True when an upstream answer says the deployment, not the request, is at fault."""
    return status >= 500 or status in DEPLOYMENT_STATUSES


@dataclass
class DeploymentState:
    """Mutable counters of one deployment (the event loop is the only writer)."""

    enabled: bool = True
    in_flight: int = 0
    successes: int = 0
    failures: int = 0
    #: Cooldowns started, by the status that triggered them ("timeout", "unreachable" or a code).
    cooldowns: Counter[str] = field(default_factory=Counter)
    cooldown_until: float = 0.0
    recent_fails: int = 0
    last_fail: float = 0.0

    def cooling(self, now: float | None = None) -> bool:
        return self.cooldown_until > (time.monotonic() if now is None else now)


@dataclass(frozen=True)
class DeploymentStats:
    """A read-only snapshot of one deployment, for /metrics, /model/info and the admin API."""

    deployment_id: str
    model_name: str
    model: str
    provider: str
    api_base: str  # public form: no credentials
    enabled: bool
    in_flight: int
    successes: int
    failures: int
    cooldowns: dict[str, int]
    cooling_down: bool
    cooldown_remaining: float


#: Told when a deployment starts cooling down here: (deployment_id, seconds, reason).
CooldownListener = Callable[[str, float, str], None]


def cool_down_from_elsewhere(state: DeploymentState, seconds: float) -> None:
    """Another gateway host cooled this deployment down (shared cooldowns, e.g. over Redis):
    skip it here too for the rest of that time; not counted in `cooldowns` (that is ours)."""
    state.cooldown_until = max(state.cooldown_until, time.monotonic() + seconds)


class CooldownPolicy:
    def __init__(self, allowed_fails: int, cooldown_time: float) -> None:
        self.allowed_fails = allowed_fails
        self.cooldown_time = cooldown_time
        #: Shared cooldowns: called once per cooldown started here, on the event loop; must
        #: not block (a networked listener sends in the background).
        self.listeners: list[CooldownListener] = []

    def started(self, deployment_id: str, reason: str) -> None:
        for listener in self.listeners:
            listener(deployment_id, self.cooldown_time, reason)

    def success(self, state: DeploymentState) -> None:
        state.successes += 1

    def failure(self, state: DeploymentState, reason: str, *, alone: bool) -> bool:
        """Count a failure; True when it puts the deployment in cooldown."""
        now = time.monotonic()
        state.failures += 1
        if now - state.last_fail > self.cooldown_time:
            state.recent_fails = 0  # the earlier failures have expired
        state.recent_fails += 1
        state.last_fail = now
        if alone or self.cooldown_time <= 0 or state.recent_fails <= self.allowed_fails:
            return False
        state.recent_fails = 0
        state.cooldown_until = now + self.cooldown_time
        state.cooldowns[reason] += 1
        return True
