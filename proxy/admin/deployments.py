"""Model records (records/model.py) applied to the router of this process.

The router starts from config.yaml; `ModelSync.apply()` then makes it match config + the stored
records: deployments added at run time are added, config deployments changed at run time are
updated, records deleted elsewhere are removed, and every deployment gets its on/off switch.
It runs after every load, reload and write of the admin state (AdminService.listeners), so a
change made through any worker or host reaches every router within one sync interval (at once
on the process that made it). Applying is idempotent: unchanged deployments are left alone, so
their counters and cooldowns are kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ..config import parse_config
from ..errors import ConfigError
from ..routing.providers import resolve_provider
from ..routing.router import Router
from ..settings import Config, Deployment, LitellmParams, ModelInfo
from .records.model import API, CONFIG, ModelRecord
from .secrets import SecretBox

log = logging.getLogger("proxy.models")

#: Not settings of a deployment but of its record (model_info.disabled is the on/off switch).
SWITCH = "disabled"


def deployment_raw(deployment: Deployment) -> dict[str, Any]:
    """A deployment back in config.yaml's shape (values as resolved at start)."""

    def plain(obj: Any, cls: type) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(cls):
            value = getattr(obj, f.name)
            if f.metadata.get("extra"):
                out.update(value)
            elif value not in (None, {}, []):
                out[f.name] = value
        return out

    return {
        "model_name": deployment.model_name,
        "litellm_params": plain(deployment.litellm_params, LitellmParams),
        "model_info": plain(deployment.model_info, ModelInfo),
    }


def parse_deployment(raw: Mapping[str, Any], environment: Mapping[str, str]) -> Deployment:
    """One model_list entry, validated as config.yaml's are and checked against the provider
    table (ConfigError naming the problem). `os.environ/NAME` resolves from `environment`."""
    config = parse_config({"model_list": [dict(raw)]}, env=environment, strict_environment=False)
    deployment = config.models[0]
    resolve_provider(deployment)
    return deployment


class ModelSync:
    def __init__(self, router: Router, config: Config) -> None:
        self.router = router
        self.environment = {**os.environ, **config.environment}
        #: Encrypts the credentials of stored records, decrypts them here only (secrets.py).
        self.box = SecretBox.for_gateway(config.general.master_key, self.environment)
        #: config.yaml's deployments by id, as the router built them at start.
        self.configured: dict[str, Deployment] = {t.deployment_id: t.deployment for t in router.deployments()}
        #: id -> why its record could not be applied (logged once).
        self.problems: dict[str, str] = {}
        #: id -> (the record's content, its deployment): apply() runs after every admin write,
        #: so unchanged records are not parsed again.
        self._parsed: dict[str, tuple[str, Deployment | None]] = {}

    def deployment_of(self, rec: ModelRecord) -> Deployment | None:
        """The deployment a record describes; None for changes to a config deployment that
        config.yaml no longer has."""
        if rec.origin == API:
            info = {k: v for k, v in rec.model_info.items() if k != SWITCH}
            raw = {"model_name": rec.model_name, "litellm_params": self.box.open(rec.litellm_params),
                   "model_info": {**info, "id": rec.model_id}}
            return parse_deployment(raw, self.environment)
        base = self.configured.get(rec.model_id)
        if base is None:
            return None
        raw = deployment_raw(base)
        raw["litellm_params"].update(self.box.open(rec.litellm_params))
        raw["model_info"].update({k: v for k, v in rec.model_info.items() if k != SWITCH})
        if rec.model_name:
            raw["model_name"] = rec.model_name
        return parse_deployment(raw, self.environment)

    def apply(self, records: Iterable[ModelRecord]) -> None:
        desired: dict[str, tuple[Deployment, bool]] = {i: (d, True) for i, d in self.configured.items()}
        problems: dict[str, str] = {}
        parsed: dict[str, tuple[str, Deployment | None]] = {}
        added: set[str] = set()
        for rec in records:
            content = json.dumps([rec.model_name, rec.litellm_params, rec.model_info, rec.origin],
                                 sort_keys=True, default=str)
            try:
                known = self._parsed.get(rec.model_id)
                deployment = known[1] if known and known[0] == content else self.deployment_of(rec)
                parsed[rec.model_id] = (content, deployment)
            except ConfigError as exc:
                problems[rec.model_id] = str(exc)
                continue
            if deployment is None:
                if rec.origin == CONFIG:
                    problems[rec.model_id] = "config.yaml no longer has this deployment"
                continue
            desired[rec.model_id] = (deployment, rec.enabled)
            if rec.origin == API:
                added.add(rec.model_id)
        self._parsed = parsed
        for ident in problems.keys() - self.problems.keys():
            log.warning("model %s stored in keys.db is not applied: %s", ident, problems[ident])
        self.problems = problems

        router = self.router
        for target in router.deployments():
            if target.deployment_id not in desired:
                router.remove_deployment(target.deployment_id)
                log.info("deployment %s (%s) removed", target.deployment_id, target.model_name)
        for ident, (deployment, enabled) in desired.items():
            try:
                current = router.deployment(ident).deployment
            except KeyError:
                current = None
            try:
                if current is None:
                    router.add_deployment(deployment, enabled=enabled)
                    log.info("deployment %s (%s) added", ident, deployment.model_name)
                elif current != deployment:
                    router.update_deployment(ident, deployment)
                    log.info("deployment %s (%s) updated", ident, deployment.model_name)
            except (ConfigError, ValueError) as exc:
                self.problems[ident] = str(exc)
                continue
            if router.state(ident).enabled != enabled:
                router.set_enabled(ident, enabled)
                log.info("deployment %s (%s) %s", ident, deployment.model_name,
                         "enabled" if enabled else "disabled")
        router.db_models = frozenset(added - self.problems.keys())
