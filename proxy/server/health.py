"""GET /health: liveness as the guide's monitor.sh reads it; with the master key, LiteLLM's
per-deployment probe too (health_probe.py)."""

from __future__ import annotations

import time

from aiohttp import web

from .. import __version__
from ..state import STARTED_AT, WRITER
from .health_probe import probe_section


async def health(request: web.Request) -> web.Response:
    writer = request.app[WRITER]
    body = {
        "status": "healthy",
        "uptime": round(time.time() - request.app[STARTED_AT], 3),
        "version": __version__,
        "log_backlog": writer.backlog,
    }
    body.update(await probe_section(request))
    return web.json_response(body)
