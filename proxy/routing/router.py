"""Which deployments serve a request, in which order, and what the router learnt about each.

Deployments are grouped by `model_name` (a group may be a wildcard pattern); a request names a
group directly, through `router_settings.model_group_alias`, or by matching a pattern. The
routing strategy orders the group; deployments that are disabled or cooling down are left out.

Deployments can be added, updated, removed, enabled and disabled while the gateway runs
(`add_deployment` & co.): the admin API builds /model/new|update|delete on these.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass

from ..accounting.pricing import UNPRICED, Price, resolve_price
from ..errors import NoDeploymentAvailable, NoDeploymentEnabled, NotFound
from ..settings import Config, Deployment
from .cooldowns import CooldownPolicy, DeploymentState, DeploymentStats
from .ids import deployment_id
from .providers import public_api_base, resolve_provider
from .strategies import strategy
from .target import Target, build_target
from .wildcards import ConcreteTargets, compile_pattern, is_pattern, specificity

log = logging.getLogger("proxy.routing")

FALLBACK_KINDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
#: A fallbacks entry for every model (LiteLLM's default fallbacks).
ANY_MODEL = "*"


@dataclass(frozen=True)
class Alias:
    model: str
    hidden: bool = False


class Router:
    def __init__(self, config: Config) -> None:
        settings = config.router
        self.default_timeout = (
            settings.timeout or config.litellm.request_timeout or config.general.request_timeout
        )
        self.max_retries = settings.num_retries
        self.strategy_name = settings.routing_strategy
        self._order = strategy(settings.routing_strategy)
        self.cooldowns = CooldownPolicy(settings.allowed_fails, settings.cooldown_time)
        self.aliases = {name: Alias(a["model"], a["hidden"]) for name, a in settings.model_group_alias.items()}
        self.fallbacks: dict[str, dict[str, tuple[str, ...]]] = {
            kind: {m: tuple(chain) for item in getattr(settings, kind) for m, chain in item.items()}
            for kind in FALLBACK_KINDS
        }
        self._targets: dict[str, Target] = {}
        self._states: dict[str, DeploymentState] = {}
        self._groups: dict[str, list[str]] = {}
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        self._seen_shapes: dict[str, int] = {}
        self._warned_providers: set[str] = set()
        self._concrete = ConcreteTargets(_price)
        #: deployment ids that reject stream_options (learnt at run time; usage then estimated).
        self.usage_unsupported: set[str] = set()
        #: deployment ids added at run time through the models API (LiteLLM's `db_model`), as
        #: the admin side last applied them.
        self.db_models: frozenset[str] = frozenset()
        for deployment in config.models:
            self.add_deployment(deployment)
        for alias, target in self.aliases.items():
            if self.group_of(target.model) is None:
                log.warning("router_settings.model_group_alias: %r points at unknown model %r",
                            alias, target.model)

    # -- run-time changes -------------------------------------------------------------------
    def add_deployment(self, deployment: Deployment, *, enabled: bool = True) -> str:
        """Validate and add a deployment (ConfigError when unusable); returns its id."""
        ident = deployment_id(deployment, self._seen_shapes)
        if ident in self._targets:
            raise ValueError(f"a deployment with id {ident!r} exists already")
        target = self._build(deployment, ident)
        self._targets[ident] = target
        self._states[ident] = DeploymentState(enabled=enabled)
        self._groups.setdefault(deployment.model_name, []).append(ident)
        self._index_patterns()
        return ident

    def update_deployment(self, ident: str, deployment: Deployment) -> None:
        """Replace a deployment's settings in place: same id, counters kept."""
        old = self._get(ident)
        target = self._build(deployment, ident)
        if old.model_name != deployment.model_name:
            self._ungroup(ident, old.model_name)
            self._groups.setdefault(deployment.model_name, []).append(ident)
        self._targets[ident] = target
        self._concrete.forget(ident)
        self.usage_unsupported.discard(ident)
        self._index_patterns()

    def remove_deployment(self, ident: str) -> Deployment:
        target = self._get(ident)
        del self._targets[ident]
        del self._states[ident]
        self._ungroup(ident, target.model_name)
        self._concrete.forget(ident)
        self.usage_unsupported.discard(ident)
        self._index_patterns()
        return target.deployment

    def set_enabled(self, ident: str, enabled: bool) -> None:
        self._get(ident)
        self._states[ident].enabled = enabled

    # -- reading ----------------------------------------------------------------------------
    @property
    def model_names(self) -> list[str]:
        """Configured model_names, wildcard patterns included."""
        return sorted(self._groups)

    @property
    def visible_names(self) -> list[str]:
        """What /v1/models lists: model_names and the aliases not marked hidden."""
        names = set(self._groups)
        names.update(a for a, t in self.aliases.items() if not t.hidden and self.group_of(t.model))
        return sorted(names)

    def deployments(self, model_name: str | None = None) -> list[Target]:
        """Every deployment (of one group), in config order, enabled or not."""
        if model_name is None:
            return list(self._targets.values())
        return [self._targets[i] for i in self._groups.get(model_name, ())]

    def deployment(self, ident: str) -> Target:
        return self._get(ident)

    def state(self, ident: str) -> DeploymentState:
        return self._states[ident]

    def stats(self) -> list[DeploymentStats]:
        """A snapshot of every deployment's counters (for /metrics and the admin API)."""
        now = time.monotonic()
        out = []
        for ident, target in self._targets.items():
            s = self._states[ident]
            out.append(DeploymentStats(
                deployment_id=ident, model_name=target.model_name,
                model=target.deployment.litellm_params.model, provider=target.provider,
                api_base=public_api_base(target.api_base), enabled=s.enabled,
                in_flight=s.in_flight, successes=s.successes, failures=s.failures,
                cooldowns=dict(s.cooldowns), cooling_down=s.cooling(now),
                cooldown_remaining=max(0.0, round(s.cooldown_until - now, 3)),
            ))
        return out

    def group_of(self, model: str) -> str | None:
        """The model_name group serving `model`: exact, alias, then the most specific pattern."""
        found = self._resolve(model)
        return found[0] if found else None

    def require(self, model: str) -> str:
        """The group serving `model`, or NotFound (404) naming what is available."""
        found = self._resolve(model)
        if found is None:
            raise self._not_found(model)
        return found[0]

    def disabled(self, model: str) -> bool:
        """Whether every deployment of the group serving `model` is switched off (the model is
        disabled: clients get 404, /v1/models hides it from all but the master key)."""
        group = self.group_of(model)
        ids = self._groups.get(group, ()) if group else ()
        return bool(ids) and not any(self._states[i].enabled for i in ids)

    def fallbacks_for(self, group: str, kind: str = "fallbacks") -> tuple[str, ...]:
        table = self.fallbacks[kind]
        return table.get(group) or table.get(ANY_MODEL, ())

    # -- the hot path -----------------------------------------------------------------------
    def candidates(self, model: str) -> tuple[str, list[Target]]:
        """(group, deployments to try in order) for a model the client named.

        NotFound when nothing serves `model`; NoDeploymentAvailable (429) when all of its
        deployments are cooling down; NoDeploymentEnabled (503) when all are disabled.
        """
        found = self._resolve(model)
        if found is None:
            raise self._not_found(model)
        group, name = found
        now = time.monotonic()
        ids = self._groups[group]
        enabled = [(self._targets[i], self._states[i]) for i in ids if self._states[i].enabled]
        ready = [c for c in enabled if not c[1].cooling(now)]
        if not ready:
            if not enabled:
                raise NoDeploymentEnabled(
                    f"Every deployment of model `{model}` is disabled.", param="model"
                )
            wait = min(s.cooldown_until for _, s in enabled) - now
            retry_after = max(1, int(wait + 0.999))
            raise NoDeploymentAvailable(
                f"No deployments available for model `{model}`: all {len(enabled)} are cooling "
                f"down after failures. Try again in {retry_after} seconds.",
                param="model", headers={"Retry-After": str(retry_after)},
            )
        ordered = self._order(ready) if len(ready) > 1 else [ready[0][0]]
        return group, self._concretize(group, name, ordered)

    def enabled_targets(self, model: str) -> tuple[str, list[Target]]:
        """(group, its enabled deployments in config order, cooling or not) for `model`, with a
        wildcard filled in for the name: what /health?model= probes."""
        found = self._resolve(model)
        if found is None:
            raise self._not_found(model)
        group, name = found
        ids = [i for i in self._groups[group] if self._states[i].enabled]
        return group, self._concretize(group, name, [self._targets[i] for i in ids])

    def targets(self, model: str) -> list[Target]:
        return self.candidates(model)[1]

    def in_flight(self, target: Target) -> contextlib.AbstractContextManager[None]:
        """Count the request against its deployment while it runs (least-busy reads this)."""
        state = self._states.get(target.deployment_id)
        if state is None:  # removed while the request was being routed
            return contextlib.nullcontext()
        return _InFlight(state)

    def succeeded(self, target: Target) -> None:
        state = self._states.get(target.deployment_id)
        if state is not None:
            self.cooldowns.success(state)

    def failed(self, target: Target, reason: str) -> bool:
        """Count a deployment failure; True when it put the deployment in cooldown."""
        state = self._states.get(target.deployment_id)
        if state is None:
            return False
        alone = len(self._groups.get(target.model_name, ())) < 2
        cooled = self.cooldowns.failure(state, reason, alone=alone)
        if cooled:
            self.cooldowns.started(target.deployment_id, reason)
            log.warning(
                "deployment %s of model %s (%s) cooling down for %gs after repeated failures "
                "(last: %s)", target.deployment_id, target.model_name, target.public_api_base,
                self.cooldowns.cooldown_time, reason,
            )
        return cooled

    # -- internals --------------------------------------------------------------------------
    def _build(self, deployment: Deployment, ident: str) -> Target:
        provider = resolve_provider(deployment, self._warned_providers)
        pattern = is_pattern(deployment.model_name) or "*" in deployment.litellm_params.model
        price = Price(UNPRICED) if pattern else _price(deployment, warn=True)
        return build_target(deployment, provider, price, self.default_timeout, ident)

    def _get(self, ident: str) -> Target:
        try:
            return self._targets[ident]
        except KeyError:
            raise KeyError(f"no deployment with id {ident!r}") from None

    def _ungroup(self, ident: str, model_name: str) -> None:
        ids = self._groups.get(model_name, [])
        if ident in ids:
            ids.remove(ident)
        if not ids:
            self._groups.pop(model_name, None)

    def _not_found(self, model: str) -> NotFound:
        available = ", ".join(self.visible_names) or "none configured"
        return NotFound(
            f"The model `{model}` does not exist. Available models: {available}.", param="model"
        )

    def _resolve(self, model: str, depth: int = 0) -> tuple[str, str] | None:
        """(group, the concrete name it serves) after following aliases."""
        if model in self._groups:
            return model, model
        alias = self.aliases.get(model)
        if alias is not None and depth < 8:  # aliases may chain; a cycle must not hang us
            return self._resolve(alias.model, depth + 1)
        for name, pattern in self._patterns:
            if pattern.match(model):
                return name, model
        return None

    def _concretize(self, group: str, name: str, targets: list[Target]) -> list[Target]:
        if group == name or not is_pattern(group):
            return targets
        match = self._pattern_of(group).match(name)
        captured = match.group(1) if match and match.groups() else name
        return [self._concrete.get(t, captured) for t in targets]

    def _index_patterns(self) -> None:
        names = sorted((n for n in self._groups if is_pattern(n)), key=specificity)
        self._patterns = [(n, compile_pattern(n)) for n in names]

    def _pattern_of(self, group: str) -> re.Pattern[str]:
        return next(p for n, p in self._patterns if n == group)


def _price(deployment: Deployment, warn: bool = False) -> Price:
    price = resolve_price(deployment)
    if warn and price.status == UNPRICED:
        log.warning(
            "no price for %s (%s): its requests log cost 0 with cost_status=unpriced; "
            "set input_cost_per_token/output_cost_per_token to price it",
            deployment.model_name, deployment.litellm_params.model,
        )
    return price


class _InFlight:
    """Router.in_flight's counting, as a plain context manager (one per upstream call)."""

    __slots__ = ("state",)

    def __init__(self, state: DeploymentState) -> None:
        self.state = state

    def __enter__(self) -> None:
        self.state.in_flight += 1

    def __exit__(self, *exc: object) -> None:
        self.state.in_flight -= 1
