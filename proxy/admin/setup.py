"""`setup_keys(app)`: virtual keys, users, teams, end users, budgets, rate limits and the spend
API in one call."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..state import (
    AUTH,
    CONFIG,
    DEGRADED_CHECKS,
    EXTRAS,
    HOOKS,
    KEYS_DB_PATH,
    MASTER,
    ROUTER,
    WORKER,
)
from .auth import KeyAuth
from .deployments import ModelSync
from .records import MODEL
from .routes import ADMIN, add_routes
from .routes.models import MODEL_SYNC
from .service import AdminService


def setup_keys(app: web.Application) -> AdminService:
    worker = app.get(WORKER)  # serve --workers N: rate limits shared by the workers
    service = AdminService(app[KEYS_DB_PATH], app[CONFIG],
                           shared_limits=worker.limits_path if worker is not None else None)
    app[ADMIN] = service
    app[EXTRAS]["keys"] = service  # for features that must not import this package (metrics)
    app[AUTH] = KeyAuth(app[MASTER], service)
    if service.redis_url:
        from .store.redis_cooldowns import SharedCooldowns

        link = service.backend.link
        SharedCooldowns(link, app[ROUTER])
        app[DEGRADED_CHECKS].append(lambda: link.status().reason)
    app[HOOKS].append(service.admission)
    # Run-time model changes reach this process's router after every load, reload and write.
    sync = ModelSync(app[ROUTER], app[CONFIG])
    app[MODEL_SYNC] = sync
    service.listeners.append(lambda: sync.apply(service.registry.all(MODEL)))
    add_routes(app)
    app.cleanup_ctx.append(_admin_lifecycle)
    return service


async def _admin_lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = app[ADMIN]
    await service.start()  # opens and migrates keys.db: a bad path fails start-up
    yield
    await service.stop()  # after in-flight requests: their spend is flushed
