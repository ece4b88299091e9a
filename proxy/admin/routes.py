"""Admin HTTP endpoints, in LiteLLM's shapes; every one requires the master key.

  POST /key/generate   POST /key/update   POST /key/delete   GET /key/info   GET /key/list
  GET /spend/info      GET /spend/logs
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import date
from typing import Any

from aiohttp import web

from ..errors import AuthError, BadRequest
from ..server.auth import bearer_token
from ..state import DB_PATH, MASTER
from . import spend
from .fields import parse_key_fields
from .record import key_hash_of
from .service import KeyService

KEYS: web.AppKey[KeyService] = web.AppKey("keys")

MAX_PAGE_SIZE = 100
DEFAULT_LOG_LIMIT = 1000
MAX_LOG_LIMIT = 10_000
MAX_SUMMARY_DAYS = 3660


def add_routes(app: web.Application) -> None:
    app.router.add_post("/key/generate", key_generate)
    app.router.add_post("/key/update", key_update)
    app.router.add_post("/key/delete", key_delete)
    app.router.add_get("/key/info", key_info)
    app.router.add_get("/key/list", key_list)
    app.router.add_get("/spend/info", spend_info)
    app.router.add_get("/spend/logs", spend_logs)


def require_master(request: web.Request) -> None:
    if not request.app[MASTER].is_master(bearer_token(request)):
        raise AuthError(f"{request.path} requires the master key (Authorization: Bearer <master_key>).")


async def key_generate(request: web.Request) -> web.Response:
    require_master(request)
    fields = parse_key_fields(await _json(request))
    raw, rec = await request.app[KEYS].generate(fields)
    # The one and only time the raw key leaves the gateway.
    return web.json_response({**rec.info(), "key": raw, "token_id": rec.key_hash})


async def key_update(request: web.Request) -> web.Response:
    require_master(request)
    body = await _json(request)
    fields = parse_key_fields(body, update=True)
    ref = fields.get("key")
    if not ref:
        raise BadRequest("`key` is required: the key (or its hash) to update.", param="key")
    rec = await request.app[KEYS].update(ref, fields)
    return web.json_response({**rec.info(), "key": ref})


async def key_delete(request: web.Request) -> web.Response:
    require_master(request)
    body = await _json(request)
    service = request.app[KEYS]
    refs = _str_list(body, "keys")
    aliases = _str_list(body, "key_aliases")
    if not refs and not aliases:
        raise BadRequest('Send {"keys": ["sk-..."]} or {"key_aliases": ["..."]}.', param="keys")
    hashes = [key_hash_of(r) for r in refs]
    for alias in aliases:
        key_hash = service.alias_hash(alias)
        if key_hash is None:
            raise BadRequest(f"No key has the alias `{alias}`; nothing was deleted.", param="key_aliases")
        hashes.append(key_hash)
    await service.delete(hashes)
    return web.json_response({"deleted_keys": refs + aliases})


async def key_info(request: web.Request) -> web.Response:
    require_master(request)
    ref = request.query.get("key", "").strip()
    if not ref:
        raise BadRequest("Pass the key (or its hash) as ?key=...", param="key")
    rec = await request.app[KEYS].find(ref)
    return web.json_response({"key": ref, "info": rec.info()})


async def key_list(request: web.Request) -> web.Response:
    require_master(request)
    q = request.query
    page = _int_param(q, "page", 1, 1, None)
    size = _int_param(q, "size", 10, 1, MAX_PAGE_SIZE)
    full = _bool_param(q, "return_full_object", False)
    keys = [
        rec
        for rec in request.app[KEYS].cache
        if all(q.get(name) in (None, getattr(rec, name)) for name in ("user_id", "team_id", "key_alias"))
    ]
    keys.sort(key=lambda rec: (rec.created_at, rec.key_hash))
    chunk = keys[(page - 1) * size : page * size]
    return web.json_response({
        "keys": [rec.info() if full else rec.key_hash for rec in chunk],
        "total_count": len(keys),
        "current_page": page,
        "total_pages": max(1, math.ceil(len(keys) / size)),
    })


async def spend_info(request: web.Request) -> web.Response:
    require_master(request)
    result = await asyncio.to_thread(spend.spend_info, request.app[DB_PATH])
    return web.json_response(result)


async def spend_logs(request: web.Request) -> web.Response:
    """LiteLLM's /spend/logs: filters combine; start_date+end_date with summarize=true (the
    default) give spend per day; otherwise matching requests, newest first, up to `limit`."""
    require_master(request)
    q = request.query
    start, end = _date_param(q, "start_date"), _date_param(q, "end_date")
    if (start is None) != (end is None):
        raise BadRequest("start_date and end_date go together (YYYY-MM-DD).", param="start_date")
    if start and end and end < start:
        raise BadRequest("end_date is before start_date.", param="end_date")
    api_key = q.get("api_key", "").strip()
    flt = spend.LogFilter(
        key_hash=key_hash_of(api_key) if api_key else None,
        user_id=q.get("user_id") or None,
        request_id=q.get("request_id") or None,
        start=start,
        end=end,
    )
    path = request.app[DB_PATH]
    if start and end and _bool_param(q, "summarize", True):
        if (end - start).days > MAX_SUMMARY_DAYS:
            raise BadRequest(f"At most {MAX_SUMMARY_DAYS} days per summary.", param="end_date")
        result = await asyncio.to_thread(spend.daily_spend, path, flt)
    else:
        limit = _int_param(q, "limit", DEFAULT_LOG_LIMIT, 1, MAX_LOG_LIMIT)
        result = await asyncio.to_thread(spend.spend_logs, path, flt, limit)
    return web.json_response(result)


# -- parameters ---------------------------------------------------------------------------


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    return body


def _str_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BadRequest(f"`{name}` must be a list of strings.", param=name)
    return list(dict.fromkeys(v.strip() for v in value))


def _int_param(q: Any, name: str, default: int, low: int, high: int | None) -> int:
    text = q.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"`{name}` must be a whole number.", param=name) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise BadRequest(f"`{name}` must be {bounds}.", param=name)
    return value


def _bool_param(q: Any, name: str, default: bool) -> bool:
    text = q.get(name)
    if text is None or text == "":
        return default
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"`{name}` must be true or false.", param=name)


def _date_param(q: Any, name: str) -> date | None:
    text = q.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"`{name}` must be a date as YYYY-MM-DD.", param=name) from None
