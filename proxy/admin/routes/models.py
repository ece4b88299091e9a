"""/model/new, /model/update, /model/delete in LiteLLM's shapes (master key).

  POST /model/new      {"model_name", "litellm_params": {"model", "api_base", "api_key", ...},
                        "model_info": {"id"?, ...}}  -> the deployment, with its model_id
  POST /model/update   {"model_info": {"id", ...}, "litellm_params": {...}, "model_name"?}
  PATCH /model/{model_id}/update   the same, id in the path
  POST /model/delete   {"id"}  -> {"message": "Model: <id> deleted successfully"}

`model_info.disabled: true|false` switches a deployment off or on (with only `model_name`
and no id: every deployment of that model). Answers never carry an api_key.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...errors import BadRequest
from ...routing.info import deployment_info
from ...state import ROUTER
from ..deployments import ModelSync
from ..ops import models as ops
from .common import body, require_master, service

MODEL_SYNC: web.AppKey[ModelSync] = web.AppKey("model_sync", ModelSync)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/model/new", model_new)
    app.router.add_post("/model/update", model_update)
    app.router.add_patch("/model/{model_id}/update", model_update)
    app.router.add_post("/model/delete", model_delete)


def _entry(request: web.Request, ident: str) -> dict[str, Any]:
    router = request.app[ROUTER]
    entry = deployment_info(router, router.deployment(ident), admin=True)
    return {"model_id": ident, **entry}


async def model_new(request: web.Request) -> web.Response:
    require_master(request)
    rec = await ops.new(service(request), request.app[MODEL_SYNC], request.app[ROUTER], await body(request))
    return web.json_response(_entry(request, rec.model_id))


async def model_update(request: web.Request) -> web.Response:
    require_master(request)
    data = await body(request)
    changed = await ops.update(service(request), request.app[MODEL_SYNC], request.app[ROUTER], data,
                               request.match_info.get("model_id"))
    named = request.match_info.get("model_id") or (data.get("model_info") or {}).get("id")
    if named:
        return web.json_response(_entry(request, changed[0].model_id))
    return web.json_response({
        "model_name": data.get("model_name"),
        "data": [_entry(request, rec.model_id) for rec in changed],
    })


async def model_delete(request: web.Request) -> web.Response:
    require_master(request)
    data = await body(request)
    ident = data.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise BadRequest('`id` is required: the deployment\'s model_info.id, e.g. {"id": "..."}.', param="id")
    await ops.delete(service(request), request.app[ROUTER], ident.strip())
    return web.json_response({"message": f"Model: {ident.strip()} deleted successfully"})
