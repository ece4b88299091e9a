"""LiteLLM's health endpoints beside the guide's /health.

  /health/liveliness, /health/liveness   200 "I'm alive!" while the process serves
  /health/readiness                      {"status": "connected", "db": "connected",
                                          "litellm_version", ...}; 503 when the request log
                                          cannot be written
  /health with the master key            adds the per-deployment probe (routing/probe.py);
  /health?model=NAME                     probes that model's deployments only (&fresh=true:
                                         now, not the cached result)

The probe is opt-in by credentials: the guide's monitor polls /health without a key and must
not set off real (billed) requests to every provider.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .. import __version__
from ..errors import AuthError
from ..routing.probe import HealthProbe
from ..state import AUTH, CLIENT, CONFIG, DEGRADED_CHECKS, ROUTER, STARTED_AT, WRITER
from .auth import bearer_token

log = logging.getLogger("proxy.health")

HEALTH_PROBE: web.AppKey[HealthProbe] = web.AppKey("health_probe", HealthProbe)


def setup_health(app: web.Application) -> None:
    """Register the liveness/readiness routes and the deployment probe."""
    general = app[CONFIG].general
    app[HEALTH_PROBE] = HealthProbe(
        app[ROUTER], lambda: app[CLIENT],
        interval=general.health_check_interval, timeout=general.health_check_timeout,
    )
    for path in ("/health/liveliness", "/health/liveness"):
        app.router.add_get(path, liveliness)
    app.router.add_get("/health/readiness", readiness)
    if general.background_health_checks:
        app.cleanup_ctx.append(_background_checks)


async def probe_section(request: web.Request) -> dict[str, Any]:
    """The probe's fields for /health: empty unless the caller holds the master key."""
    app = request.app
    token = bearer_token(request)
    model = request.query.get("model") or None
    if token is None and model is None:
        return {}
    try:
        principal = await app[AUTH].authenticate(token)
    except AuthError:
        return {}
    if not principal.is_admin:
        return {}
    # ?fresh=true: probe now, not the result of the last health_check_interval (the UI's "Test").
    fresh = request.query.get("fresh", "").lower() in ("1", "true")
    return await app[HEALTH_PROBE].check(model, fresh=fresh)


async def liveliness(request: web.Request) -> web.Response:
    return web.json_response("I'm alive!")


async def readiness(request: web.Request) -> web.Response:
    app = request.app
    writer = app[WRITER]
    writable, reason = log_writable(writer)
    others = other_reasons(app)
    if others:  # e.g. Redis unreachable: not ready, as with an unwritable log
        writable, reason = False, "; ".join(([reason] if reason else []) + others)
    body: dict[str, Any] = {
        "status": "connected" if writable else "unhealthy",
        "db": "connected" if log_writable(writer)[0] else "cannot write the request log",
        "litellm_version": __version__,
        "version": __version__,
        "uptime": round(time.time() - app[STARTED_AT], 3),
        "log_backlog": writer.backlog,
        "deployments": len(app[ROUTER].deployments()),
    }
    if not writable:
        body["reason"] = reason
    return web.json_response(body, status=200 if writable else 503)


def other_reasons(app: web.Application) -> list[str]:
    """Why anything besides the request log degrades the gateway (DEGRADED_CHECKS)."""
    return [reason for check in app.get(DEGRADED_CHECKS, ()) if (reason := check())]


def log_writable(writer: Any) -> tuple[bool, str | None]:
    """(writable, why not): the writer thread runs and does not report itself degraded."""
    thread = getattr(writer, "_thread", None)
    if thread is None or not thread.is_alive():
        return False, "the request-log writer is not running"
    status = getattr(writer, "status", None)
    if callable(status):
        current = status()
        if current.degraded:
            return False, current.reason
    return True, None


async def _background_checks(app: web.Application) -> AsyncIterator[None]:
    """general_settings.background_health_checks: probe every health_check_interval."""
    probe = app[HEALTH_PROBE]

    async def loop() -> None:
        while True:
            try:
                await probe.check(fresh=True)
            except Exception:
                log.exception("background health check failed")
            await asyncio.sleep(probe.interval)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
