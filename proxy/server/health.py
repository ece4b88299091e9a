"""GET /health: liveness as the guide's monitor.sh reads it."""

from __future__ import annotations

import time

from aiohttp import web

from .. import __version__
from ..state import STARTED_AT, WRITER


async def health(request: web.Request) -> web.Response:
    writer = request.app[WRITER]
    return web.json_response(
        {
            "status": "healthy",
            "uptime": round(time.time() - request.app[STARTED_AT], 3),
            "version": __version__,
            "log_backlog": writer.backlog,
        }
    )
