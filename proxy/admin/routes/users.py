"""/user/* and /team/* in LiteLLM's shapes. The master key manages them; a key may read its
own user (/user/info) and the teams it belongs to (/team/info, /team/list).

  POST /user/new  /user/update  /user/delete           GET /user/info  /user/list
  POST /team/new  /team/update  /team/delete  /team/block  /team/unblock
       /team/member_add  /team/member_delete  /team/member_update
  GET  /team/info  /team/list
"""

from __future__ import annotations

from aiohttp import web

from ...errors import BadRequest, PermissionDenied
from ..ops import teams, users
from .common import body, caller, int_param, require_master, service, str_list


def add_routes(app: web.Application) -> None:
    app.router.add_post("/user/new", user_new)
    app.router.add_post("/user/update", user_update)
    app.router.add_post("/user/delete", user_delete)
    app.router.add_get("/user/info", user_info)
    app.router.add_get("/user/list", user_list)
    app.router.add_post("/team/new", team_new)
    app.router.add_post("/team/update", team_update)
    app.router.add_post("/team/delete", team_delete)
    app.router.add_post("/team/block", team_block)
    app.router.add_post("/team/unblock", team_unblock)
    app.router.add_post("/team/member_add", team_member_add)
    app.router.add_post("/team/member_delete", team_member_delete)
    app.router.add_post("/team/member_update", team_member_update)
    app.router.add_get("/team/info", team_info)
    app.router.add_get("/team/list", team_list)


async def user_new(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await users.new(service(request), users.parse_user(await body(request))))


async def user_update(request: web.Request) -> web.Response:
    require_master(request)
    rec = await users.update(service(request), await body(request))
    return web.json_response(rec.info(service(request).registry.teams_of(rec.user_id)))


async def user_delete(request: web.Request) -> web.Response:
    require_master(request)
    deleted = await users.delete(service(request), str_list(await body(request), "user_ids", required=True))
    return web.json_response({"deleted_users": deleted})


async def user_info(request: web.Request) -> web.Response:
    who = await caller(request)
    return web.json_response(users.info(service(request), who, request.query.get("user_id") or None))


async def user_list(request: web.Request) -> web.Response:
    require_master(request)
    q = request.query
    ids = [i for i in (q.get("user_ids") or "").split(",") if i] or None
    return web.json_response(users.listing(
        service(request), page=int_param(q, "page", 1, 1, None), page_size=int_param(q, "page_size", 25, 1, 100),
        user_ids=ids, role=q.get("role") or None, team_id=q.get("team_id") or None,
    ))


async def team_new(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await teams.new(service(request), teams.parse_team(await body(request))))


async def team_update(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await teams.update(service(request), await body(request)))


async def team_delete(request: web.Request) -> web.Response:
    require_master(request)
    deleted = await teams.delete(service(request), str_list(await body(request), "team_ids", required=True))
    return web.json_response({"deleted_teams": deleted})


async def team_block(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await teams.block(service(request), await body(request), True))


async def team_unblock(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await teams.block(service(request), await body(request), False))


async def team_member_add(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await teams.member_add(service(request), await body(request)))


async def team_member_delete(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await teams.member_delete(service(request), await body(request)))


async def team_member_update(request: web.Request) -> web.Response:
    require_master(request)
    return web.json_response(await teams.member_update(service(request), await body(request)))


async def team_info(request: web.Request) -> web.Response:
    who = await caller(request)
    team_id = request.query.get("team_id") or (None if who.is_admin else who.team_id)
    if not team_id:
        raise BadRequest("Pass ?team_id=...", param="team_id")
    if not who.is_admin and team_id != who.team_id:
        raise PermissionDenied("You may only read your own team's info.", param="team_id")
    return web.json_response(teams.info(service(request), team_id))


async def team_list(request: web.Request) -> web.Response:
    who = await caller(request)
    user_id = request.query.get("user_id") or None
    if not who.is_admin:
        if who.user_id is None or user_id not in (None, who.user_id):
            raise PermissionDenied("You may only list your own user's teams.", param="user_id")
        user_id = who.user_id
    return web.json_response(teams.listing(service(request), user_id))
