"""Model operations behind /model/new, /model/update and /model/delete (routes/models.py).

Every change is a ModelRecord written through the admin store (keys.db, or Redis when
configured); the store's listeners apply it to this process's router at once and the other
processes' on their next sync (admin/deployments.py). Nothing is written when the deployment
would not work: it is parsed and checked against the provider table first.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from ...errors import BadRequest, ConfigError, NotFound
from ...routing.router import Router
from ..deployments import SWITCH, ModelSync
from ..records import MODEL, ModelRecord, Ref
from ..records.model import API, CONFIG
from ..service import AdminService

log = logging.getLogger("proxy.models")


def _mapping(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"`{name}` must be an object.", param=name)
    return dict(value)


def _switch(info: dict[str, Any]) -> bool | None:
    """model_info.disabled taken out of the settings: True/False, or None when not sent."""
    if SWITCH not in info:
        return None
    value = info.pop(SWITCH)
    if not isinstance(value, bool):
        raise BadRequest("`model_info.disabled` must be true or false.", param="model_info.disabled")
    return value


def _missing(ident: str) -> NotFound:
    return NotFound(f"No deployment with id `{ident}`.", param="model_info.id", code="model_not_found")


async def new(service: AdminService, sync: ModelSync, router: Router, data: dict[str, Any]) -> ModelRecord:
    name = data.get("model_name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("`model_name` is required: the name clients will ask for.", param="model_name")
    params = _mapping(data, "litellm_params")
    if not isinstance(params.get("model"), str) or not params["model"].strip():
        raise BadRequest("`litellm_params.model` is required, e.g. openai/gpt-4o-mini.",
                         param="litellm_params.model")
    info = _mapping(data, "model_info")
    disabled = _switch(info)
    ident = str(info.pop("id", None) or uuid.uuid4())
    rec = ModelRecord(model_id=ident, model_name=name.strip(), litellm_params=sync.box.seal(params),
                      model_info=info, origin=API, enabled=not disabled)
    async with service.lock:
        if ident in service.registry.models or _known(router, ident):
            raise BadRequest(f"A deployment with id `{ident}` exists already.", param="model_info.id")
        _check(sync, rec)
        await service.write(inserts=[rec])
    log.info("model added: %s (%s, id %s)", rec.model_name, params["model"], ident)
    return rec


async def update(service: AdminService, sync: ModelSync, router: Router, data: dict[str, Any],
                 ident: str | None = None) -> list[ModelRecord]:
    """One deployment (model_info.id, or the id in the path), or, given only `model_name` and
    model_info.disabled, every deployment of that model: the model's on/off switch."""
    params = _mapping(data, "litellm_params")
    info = _mapping(data, "model_info")
    disabled = _switch(info)
    ident = ident or (str(info.pop("id")) if info.get("id") else None)
    info.pop("id", None)
    name = data.get("model_name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise BadRequest("`model_name` must be a non-empty string.", param="model_name")
    async with service.lock:
        if ident is None:
            if not isinstance(name, str) or disabled is None or params or info:
                raise BadRequest("Name the deployment with model_info.id (or send model_name with "
                                 "only model_info.disabled to switch a whole model).", param="model_info.id")
            group = router.group_of(name)
            targets = router.deployments(group) if group == name else []
            if not targets:
                raise NotFound(f"The model `{name}` does not exist.", param="model_name")
            changed = [_changed(service, sync, t.deployment_id, None, {}, {}, disabled) for t in targets]
        else:
            if not _known(router, ident) and ident not in service.registry.models:
                raise _missing(ident)
            changed = [_changed(service, sync, ident, name, params, info, disabled)]
        for rec in changed:
            _check(sync, rec)
        inserts = [r for r in changed if r.ident not in service.registry.models]
        updates = [r for r in changed if r.ident in service.registry.models]
        held = await service.write(inserts=inserts, updates=updates)
    for rec in held:
        log.info("model updated: %s (id %s)%s", rec.label, rec.model_id, "" if rec.enabled else ", disabled")
    return held


def _changed(service: AdminService, sync: ModelSync, ident: str, name: str | None,
             params: dict[str, Any], info: dict[str, Any], disabled: bool | None) -> ModelRecord:
    """The record after this change. A null value clears a field (for a config deployment:
    back to config.yaml's value)."""
    current = service.registry.models.get(ident)
    if current is None:  # a config deployment changed for the first time
        current = ModelRecord(model_id=ident, origin=CONFIG, created_at=time.time())
    merged_params = {k: v for k, v in {**current.litellm_params, **sync.box.seal(params)}.items() if v is not None}
    merged_info = {k: v for k, v in {**current.model_info, **info}.items() if v is not None}
    return ModelRecord(
        model_id=ident,
        model_name=name.strip() if name else current.model_name,
        litellm_params=merged_params,
        model_info=merged_info,
        origin=current.origin,
        enabled=current.enabled if disabled is None else not disabled,
        created_at=current.created_at,
        updated_at=time.time(),
    )


async def delete(service: AdminService, router: Router, ident: str) -> None:
    async with service.lock:
        rec = service.registry.models.get(ident)
        if rec is None or rec.origin != API:
            if _known(router, ident):
                raise BadRequest(f"Deployment `{ident}` comes from config.yaml: remove it there, or "
                                 "disable it (/model/update with model_info.disabled).", param="id")
            raise _missing(ident)
        await service.write(deletes=[Ref(MODEL, ident)])
    log.info("model deleted: %s (id %s)", rec.label, ident)


def _known(router: Router, ident: str) -> bool:
    try:
        router.deployment(ident)
    except KeyError:
        return False
    return True


def _check(sync: ModelSync, rec: ModelRecord) -> None:
    try:
        deployment = sync.deployment_of(rec)
    except ConfigError as exc:
        raise BadRequest(str(exc).replace("model_list[0].", ""), param="litellm_params") from None
    if deployment is None:
        raise BadRequest(f"Deployment `{rec.model_id}` is no longer in config.yaml.", param="model_info.id")
