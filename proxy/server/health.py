"""GET /health: liveness as the guide's monitor.sh reads it, the request log's state, and with
the master key LiteLLM's per-deployment probe too (health_probe.py).

Healthy: 200 {"status": "healthy", "uptime", "version", "log_backlog"}. While the request log is
degraded (rows spilled awaiting replay, held past request_log_spill_after, or queued past
request_log_max_backlog — see LogWriter.status()): 503 {"status": "degraded", "reason", …},
so a load balancer or monitor notices before rows are at risk. The same 503 shape, with its
own reason, while anything in DEGRADED_CHECKS reports a fault (Redis unreachable). (/health/readiness says the
same in LiteLLM's shape; /health/liveliness stays 200: a restart would not fix the database.)
"""

from __future__ import annotations

import time

from aiohttp import web

from .. import __version__
from ..state import STARTED_AT, WRITER
from .health_probe import other_reasons, probe_section


async def health(request: web.Request) -> web.Response:
    log = request.app[WRITER].status()
    others = other_reasons(request.app)
    degraded = log.degraded or bool(others)
    body: dict[str, object] = {
        "status": "degraded" if degraded else "healthy",
        "uptime": round(time.time() - request.app[STARTED_AT], 3),
        "version": __version__,
        "log_backlog": log.backlog,
    }
    if degraded:
        reasons = ([log.reason or "request log degraded"] if log.degraded else []) + others
        body["reason"] = "; ".join(reasons)
        body["log_spilled"] = log.spilled_pending
    body.update(await probe_section(request))
    return web.json_response(body, status=503 if degraded else 200)

