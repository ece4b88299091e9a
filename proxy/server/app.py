"""The application factory: `create_app(config)` wires every part of the gateway."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from ..accounting.logger import RequestLogger
from ..admin import setup_keys
from ..api.headers import name_response
from ..api.llm import LLM_ROUTES, handle_llm, list_models
from ..api.models import setup_model_routes
from ..callbacks import setup_callbacks
from ..logdb.writer import LogWriter
from ..ops.retention import setup_retention
from ..routing.router import Router
from ..routing.upstream import new_client_session
from ..settings import Config
from ..state import (
    AUTH,
    CLIENT,
    CONFIG,
    DB_PATH,
    DEGRADED_CHECKS,
    EXTRAS,
    HOOKS,
    KEYS_DB_PATH,
    MASTER,
    REQUEST_LOGGER,
    ROUTER,
    STARTED_AT,
    TRUSTED_PROXIES,
    WORKER,
    WRITER,
)
from ..workers.info import WorkerInfo
from .auth import MasterKeyAuth
from .health import health
from .health_probe import setup_health
from .metrics import setup_metrics
from .middleware import errors_and_logging
from .shutdown import IN_FLIGHT, InFlight, track_in_flight
from .ui import setup_ui

log = logging.getLogger("proxy")


def create_app(
    config: Config,
    *,
    db_path: str | Path | None = None,
    keys_db_path: str | Path | None = None,
    worker: WorkerInfo | None = None,
) -> web.Application:
    """Build the gateway. `db_path`/`keys_db_path` override the config's paths (--db, --keys-db);
    `worker`: this app is one of `serve --workers N` (proxy/workers)."""
    app = web.Application(
        middlewares=[track_in_flight, errors_and_logging],
        client_max_size=config.general.max_request_body_bytes,
    )
    app[IN_FLIGHT] = InFlight()
    if worker is not None:
        app[WORKER] = worker
    app[CONFIG] = config
    app[DB_PATH] = str(db_path or config.general.database_path)
    # Keys live beside the log by default, never inside it: Datasette serves the log.
    app[KEYS_DB_PATH] = str(
        keys_db_path
        or config.general.keys_database_path
        or Path(app[DB_PATH]).with_name("keys.db")
    )
    app[STARTED_AT] = time.time()
    app[ROUTER] = Router(config)
    master = MasterKeyAuth(config.general.master_key)
    app[MASTER] = master
    app[AUTH] = master
    app[HOOKS] = []
    app[EXTRAS] = {}
    app[DEGRADED_CHECKS] = []
    app[TRUSTED_PROXIES] = frozenset(config.general.trusted_proxies)

    app.cleanup_ctx.append(_request_log)
    app.cleanup_ctx.append(_client_session)
    app.on_response_prepare.append(name_response)

    for path in LLM_ROUTES:
        app.router.add_post(path, handle_llm)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/models", list_models)
    setup_model_routes(app)
    app.router.add_get("/health", health)

    # Features register their routes, hooks and cleanup contexts here, one call each.
    # (keys/budgets, metrics, callbacks, ui, retention)
    setup_keys(app)
    setup_health(app)
    setup_retention(app)
    setup_metrics(app)
    setup_callbacks(app)
    setup_ui(app, Path(config.general.ui_dir), config.general.ui_username, config.general.ui_password)

    if master.open:
        log.warning(
            "NO MASTER KEY CONFIGURED: the gateway is open to anyone who can reach it. "
            "Set general_settings.master_key (e.g. os.environ/LITELLM_MASTER_KEY)."
        )
    return app


async def _request_log(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    general = config.general
    writer = LogWriter(
        app[DB_PATH],
        spill_path=general.request_log_spill_path,
        spill_after=general.request_log_spill_after,
        max_backlog=general.request_log_max_backlog,
    )
    writer.start()
    app[WRITER] = writer
    app[REQUEST_LOGGER] = RequestLogger(
        writer,
        app[HOOKS],
        store_prompts=config.general.store_prompts,
        max_stored_chars=config.general.max_stored_chars,
        json_logs=config.general.json_logs or config.litellm.json_logs,
    )
    log.info("request log: %s", app[DB_PATH])
    yield
    # Runs after in-flight requests finished or were cancelled: every row they produced is
    # queued. Whatever the database will not take now is spilled, never dropped.
    await asyncio.to_thread(writer.stop)
    status = writer.status()
    log.info("request log flushed: %d rows written", status.rows_written)
    if status.spilled_pending or status.rows_lost:
        log.warning("request log: %d rows wait in %s for the next start; %d lost",
                    status.spilled_pending, status.spill_path, status.rows_lost)


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    session = new_client_session()
    app[CLIENT] = session
    yield
    await session.close()
