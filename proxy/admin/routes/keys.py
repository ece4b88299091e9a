"""/key/* in LiteLLM's shapes. The master key manages keys; a key may read itself (/key/info).

  POST /key/generate  /key/update  /key/delete  /key/regenerate (/key/{key}/regenerate)
  POST /key/block  /key/unblock    GET /key/info  /key/list
"""

from __future__ import annotations

import math

from aiohttp import web

from ...errors import BadRequest
from ..fields import KEY_ACTIVE, KEY_SPECIAL, KEY_STORED, parse
from ..ops import keys as ops
from ..records.key import key_hash_of
from .common import body, bool_param, caller, int_param, require_master, service, str_list

MAX_PAGE_SIZE = 100


def add_routes(app: web.Application) -> None:
    app.router.add_post("/key/generate", key_generate)
    app.router.add_post("/key/update", key_update)
    app.router.add_post("/key/delete", key_delete)
    app.router.add_post("/key/regenerate", key_regenerate)
    app.router.add_post("/key/{key}/regenerate", key_regenerate)
    app.router.add_post("/key/block", key_block)
    app.router.add_post("/key/unblock", key_unblock)
    app.router.add_get("/key/info", key_info)
    app.router.add_get("/key/list", key_list)


def parse_key(data: dict, *, update: bool = False):
    return parse(data, KEY_ACTIVE, KEY_STORED, KEY_SPECIAL, update=update, what="a key")


async def key_generate(request: web.Request) -> web.Response:
    require_master(request)
    raw, rec = await ops.generate(service(request), parse_key(await body(request)))
    # The one and only time the raw key leaves the gateway.
    return web.json_response({**rec.info(), "key": raw, "token_id": rec.key_hash})


def _ref(data: dict, param: str = "key") -> str:
    ref = data.get(param)
    if not isinstance(ref, str) or not ref.strip():
        raise BadRequest(f"`{param}` is required: the key (or its hash).", param=param)
    return ref


async def key_update(request: web.Request) -> web.Response:
    require_master(request)
    data = await body(request)
    ref = _ref(data)
    rec = await ops.update(service(request), ref, parse_key(data, update=True))
    return web.json_response({**rec.info(), "key": ref})


async def key_delete(request: web.Request) -> web.Response:
    require_master(request)
    data = await body(request)
    refs = str_list(data, "keys")
    aliases = str_list(data, "key_aliases")
    if not refs and not aliases:
        raise BadRequest('Send {"keys": ["sk-..."]} or {"key_aliases": ["..."]}.', param="keys")
    hashes = [key_hash_of(r) for r in refs]
    for alias in aliases:
        key_hash = service(request).registry.alias_hash(alias)
        if key_hash is None:
            raise BadRequest(f"No key has the alias `{alias}`; nothing was deleted.", param="key_aliases")
        hashes.append(key_hash)
    await ops.delete(service(request), hashes)
    return web.json_response({"deleted_keys": refs + aliases})


async def key_regenerate(request: web.Request) -> web.Response:
    require_master(request)
    data = await body(request)
    ref = request.match_info.get("key") or _ref(data)
    raw, rec = await ops.regenerate(service(request), ref, parse_key({k: v for k, v in data.items() if k != "key"}, update=True))
    return web.json_response({**rec.info(), "key": raw, "token_id": rec.key_hash})


async def _set_blocked(request: web.Request, blocked: bool) -> web.Response:
    require_master(request)
    data = await body(request)
    rec = await ops.update(service(request), _ref(data), parse_key({"blocked": blocked}, update=True))
    return web.json_response(rec.info())


async def key_block(request: web.Request) -> web.Response:
    return await _set_blocked(request, True)


async def key_unblock(request: web.Request) -> web.Response:
    return await _set_blocked(request, False)


async def key_info(request: web.Request) -> web.Response:
    who = await caller(request)
    ref = request.query.get("key", "").strip() or None
    rec = await ops.readable(service(request), who, ref)
    return web.json_response({"key": ref or rec.key_hash, "info": rec.info()})


async def key_list(request: web.Request) -> web.Response:
    require_master(request)
    q = request.query
    page = int_param(q, "page", 1, 1, None)
    size = int_param(q, "size", 10, 1, MAX_PAGE_SIZE)
    full = bool_param(q, "return_full_object", False)
    keys = [
        rec
        for rec in service(request).registry
        if all(q.get(name) in (None, getattr(rec, name)) for name in ("user_id", "team_id", "key_alias"))
        and q.get("key_hash") in (None, rec.key_hash)
    ]
    keys.sort(key=lambda rec: (rec.created_at, rec.key_hash))
    chunk = keys[(page - 1) * size : page * size]
    return web.json_response({
        "keys": [rec.info() if full else rec.key_hash for rec in chunk],
        "total_count": len(keys),
        "current_page": page,
        "total_pages": max(1, math.ceil(len(keys) / size)),
    })
