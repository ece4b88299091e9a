"""/spend/info and /spend/logs: read-only queries of the request log, master key only."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ...errors import BadRequest
from ...state import DB_PATH
from .. import spend
from ..records.key import key_hash_of
from .common import bool_param, date_param, int_param, require_master

DEFAULT_LOG_LIMIT = 1000
MAX_LOG_LIMIT = 10_000
MAX_SUMMARY_DAYS = 3660


def add_routes(app: web.Application) -> None:
    app.router.add_get("/spend/info", spend_info)
    app.router.add_get("/spend/logs", spend_logs)


async def spend_info(request: web.Request) -> web.Response:
    require_master(request)
    result = await asyncio.to_thread(spend.spend_info, request.app[DB_PATH])
    return web.json_response(result)


async def spend_logs(request: web.Request) -> web.Response:
    """LiteLLM's /spend/logs: filters combine; start_date+end_date with summarize=true (the
    default) give spend per day; otherwise matching requests, newest first, up to `limit`."""
    require_master(request)
    q = request.query
    start, end = date_param(q, "start_date"), date_param(q, "end_date")
    if (start is None) != (end is None):
        raise BadRequest("start_date and end_date go together (YYYY-MM-DD).", param="start_date")
    if start and end and end < start:
        raise BadRequest("end_date is before start_date.", param="end_date")
    api_key = q.get("api_key", "").strip()
    flt = spend.LogFilter(
        key_hash=key_hash_of(api_key) if api_key else None,
        user_id=q.get("user_id") or None,
        team_id=q.get("team_id") or None,
        request_id=q.get("request_id") or None,
        start=start,
        end=end,
    )
    path = request.app[DB_PATH]
    if start and end and bool_param(q, "summarize", True):
        if (end - start).days > MAX_SUMMARY_DAYS:
            raise BadRequest(f"At most {MAX_SUMMARY_DAYS} days per summary.", param="end_date")
        result = await asyncio.to_thread(spend.daily_spend, path, flt)
    else:
        limit = int_param(q, "limit", DEFAULT_LOG_LIMIT, 1, MAX_LOG_LIMIT)
        result = await asyncio.to_thread(spend.spend_logs, path, flt, limit)
    return web.json_response(result)
