"""/end_user/* (also /customer/*, LiteLLM's newer name) and /budget/*, master key only.

  POST /end_user/new  /end_user/update  /end_user/delete  /end_user/block  /end_user/unblock
  GET  /end_user/info?end_user_id=  /end_user/list
  POST /budget/new  /budget/update  /budget/delete  /budget/info    GET /budget/list
"""

from __future__ import annotations

from aiohttp import web

from ...errors import BadRequest
from ..errors import EntityNotFound
from ..ops import customers as ops
from .common import body, require_master, service, str_list


def add_routes(app: web.Application) -> None:
    for prefix in ("/end_user", "/customer"):
        app.router.add_post(f"{prefix}/new", end_user_new)
        app.router.add_post(f"{prefix}/update", end_user_update)
        app.router.add_post(f"{prefix}/delete", end_user_delete)
        app.router.add_post(f"{prefix}/block", end_user_block)
        app.router.add_post(f"{prefix}/unblock", end_user_unblock)
        app.router.add_get(f"{prefix}/info", end_user_info)
        app.router.add_get(f"{prefix}/list", end_user_list)
    app.router.add_post("/budget/new", budget_new)
    app.router.add_post("/budget/update", budget_update)
    app.router.add_post("/budget/delete", budget_delete)
    app.router.add_post("/budget/info", budget_info)
    app.router.add_get("/budget/list", budget_list)


async def end_user_new(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await ops.new_end_user(service(request), await body(request)))


async def end_user_update(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await ops.update_end_user(service(request), await body(request)))


async def end_user_delete(request: web.Request) -> web.Response:
    require_master(request)
    ids = str_list(await body(request), "user_ids", required=True)
    return web.json_response(await ops.delete_end_users(service(request), ids))


async def end_user_block(request: web.Request) -> web.Response:
    require_master(request)
    ids = str_list(await body(request), "user_ids", required=True)
    blocked = await ops.block(service(request), ids, True)
    return web.json_response({"blocked_users": [rec.info() for rec in blocked]})


async def end_user_unblock(request: web.Request) -> web.Response:
    require_master(request)
    ids = str_list(await body(request), "user_ids", required=True)
    await ops.block(service(request), ids, False)
    still = [e.user_id for e in service(request).registry.end_users.values() if e.blocked]
    return web.json_response({"blocked_users": still})


async def end_user_info(request: web.Request) -> web.Response:
    require_master(request)
    ident = request.query.get("end_user_id") or request.query.get("user_id")
    rec = service(request).registry.end_users.get(ident or "")
    if rec is None:
        if not ident:
            raise BadRequest("Pass ?end_user_id=...", param="end_user_id")
        raise EntityNotFound(f"End User Id={ident} does not exist in db", param="end_user_id")
    return web.json_response(rec.info())


async def end_user_list(request: web.Request) -> web.Response:
    require_master(request)
    records = sorted(service(request).registry.end_users.values(), key=lambda e: (e.created_at, e.user_id))
    return web.json_response([rec.info() for rec in records])


async def budget_new(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await ops.new_budget(service(request), await body(request)))


async def budget_update(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await ops.update_budget(service(request), await body(request)))


async def budget_delete(request: web.Request) -> web.Response:
    require_master(request)
    data = await body(request)
    return web.json_response(await ops.delete_budget(service(request), data.get("id", data.get("budget_id"))))


async def budget_info(request: web.Request) -> web.Response:
    require_master(request)
    ids = str_list(await body(request), "budgets", required=True)
    return web.json_response([(await ops.find_budget(service(request), i)).info() for i in ids])


async def budget_list(request: web.Request) -> web.Response:
    require_master(request)
    tiers = sorted(service(request).registry.tiers.values(), key=lambda t: (t.created_at, t.budget_id))
    return web.json_response([t.info() for t in tiers])
