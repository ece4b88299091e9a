"""`setup_keys(app)`: virtual keys, budgets, rate limits and the spend API in one call."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..state import AUTH, CONFIG, EXTRAS, HOOKS, KEYS_DB_PATH, MASTER
from .auth import KeyAuth
from .routes import KEYS, add_routes
from .service import KeyService


def setup_keys(app: web.Application) -> KeyService:
    service = KeyService(app[KEYS_DB_PATH], app[CONFIG].litellm)
    app[KEYS] = service
    app[EXTRAS]["keys"] = service  # for features that must not import this package (metrics)
    app[AUTH] = KeyAuth(app[MASTER], service)
    app[HOOKS].append(service)
    add_routes(app)
    app.cleanup_ctx.append(_keys_lifecycle)
    return service


async def _keys_lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = app[KEYS]
    await service.start()  # opens and migrates keys.db: a bad path fails start-up
    yield
    await service.stop()  # after in-flight requests: their spend is flushed
