"""Model lookups in LiteLLM's shapes: GET /v1/models/{model}, /model/info, /model_group/info.

Any valid key may ask; it sees the models it may use. The master key also sees each
deployment's run-time state (enabled, in flight, failures, cooldown).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import NotFound
from ..routing.info import deployment_info, group_info
from ..server.auth import Principal, bearer_token
from ..state import AUTH, ROUTER

CREATED = 1677610602  # what /v1/models says too: OpenAI's SDK wants a number


def setup_model_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_get(f"{prefix}/models/{{model:.+}}", retrieve_model)
        app.router.add_get(f"{prefix}/model/info", model_info)
        app.router.add_get(f"{prefix}/model_group/info", model_group_info)


async def _caller(request: web.Request) -> Principal:
    return await request.app[AUTH].authenticate(bearer_token(request))


def _missing(model: str) -> NotFound:
    return NotFound(f"The model `{model}` does not exist.", param="model")


async def retrieve_model(request: web.Request) -> web.Response:
    """The SDK's models.retrieve(): any name the gateway serves, wildcards and aliases included."""
    principal = await _caller(request)
    model = request.match_info["model"]
    router = request.app[ROUTER]
    if router.group_of(model) is None or not principal.may_use(model) or (
            router.disabled(model) and not principal.is_admin):
        raise _missing(model)
    return web.json_response(
        {"id": model, "object": "model", "created": CREATED, "owned_by": "shin-gateway"}
    )


async def model_info(request: web.Request) -> web.Response:
    """Every deployment with its litellm_params (no secrets) and model_info; `?litellm_model_id=`
    picks one; aliases not marked hidden are listed under their own name, as LiteLLM does."""
    principal = await _caller(request)
    router = request.app[ROUTER]
    wanted = request.query.get("litellm_model_id")
    data: list[dict[str, Any]] = []
    for name in _names(router, principal):
        group = router.group_of(name)
        for target in router.deployments(group) if group else ():
            if wanted and target.deployment_id != wanted:
                continue
            data.append(deployment_info(router, target, model_name=name, admin=principal.is_admin))
    if wanted and not data:
        raise NotFound(f"No deployment with id `{wanted}`.", param="litellm_model_id",
                       code="model_not_found")
    return web.json_response({"data": data})


async def model_group_info(request: web.Request) -> web.Response:
    """One entry per model name (LiteLLM's ModelGroupInfo); `?model_group=` picks one."""
    principal = await _caller(request)
    router = request.app[ROUTER]
    wanted = request.query.get("model_group")
    names = [n for n in _names(router, principal) if wanted is None or n == wanted]
    if wanted and not names:
        raise _missing(wanted)
    data = [group_info(router, name, router.group_of(name) or name) for name in names]
    return web.json_response({"data": data})


def _names(router: Any, principal: Principal) -> list[str]:
    return [n for n in router.visible_names if principal.may_use(n)]
