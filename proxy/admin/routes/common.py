"""What every admin route shares: the service's AppKey, who may call, and parameter parsing."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from aiohttp import web

from ...errors import AuthError, BadRequest
from ...server.auth import Principal, bearer_token
from ...state import AUTH, MASTER
from ..service import AdminService

ADMIN: web.AppKey[AdminService] = web.AppKey("admin", AdminService)


def service(request: web.Request) -> AdminService:
    return request.app[ADMIN]


def require_master(request: web.Request) -> None:
    if not request.app[MASTER].is_master(bearer_token(request)):
        raise AuthError(f"{request.path} requires the master key (Authorization: Bearer <master_key>).")


async def caller(request: web.Request) -> Principal:
    """The master key or a virtual key (for the endpoints LiteLLM lets a key call on itself)."""
    return await request.app[AUTH].authenticate(bearer_token(request))


async def body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object.")
    return data


def str_list(data: dict[str, Any], name: str, *, required: bool = False) -> list[str]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BadRequest(f"`{name}` must be a list of strings.", param=name)
    if required and not value:
        raise BadRequest(f"`{name}` is required: a list of ids.", param=name)
    return list(dict.fromkeys(v.strip() for v in value))


def int_param(q: Any, name: str, default: int, low: int, high: int | None) -> int:
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


def bool_param(q: Any, name: str, default: bool) -> bool:
    text = q.get(name)
    if text is None or text == "":
        return default
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"`{name}` must be true or false.", param=name)


def date_param(q: Any, name: str) -> date | None:
    text = q.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"`{name}` must be a date as YYYY-MM-DD.", param=name) from None


def json_response(data: Any) -> web.Response:
    return web.json_response(data)
