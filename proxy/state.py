"""Typed application state: every long-lived object of the gateway, one AppKey each."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from .accounting.exchange import Exchange
    from .accounting.logger import RequestLogger
    from .logdb.record import RequestRecord
    from .logdb.writer import LogWriter
    from .routing.router import Router
    from .server.auth import Authenticator, MasterKeyAuth
    from .settings import Config
    from .workers.info import WorkerInfo


class RequestHook(Protocol):
    """Admission control and accounting around each LLM request (budgets, limits, metrics).

    `admit` runs after authentication and model lookup, before the upstream call, and raises a
    GatewayError to refuse. `complete` runs once per logged request, admitted or not, on the
    event loop: it must be quick and must not raise.
    """

    async def admit(self, exchange: Exchange) -> None: ...

    def complete(self, exchange: Exchange, record: RequestRecord) -> None: ...


CONFIG: web.AppKey[Config] = web.AppKey("config")
STARTED_AT: web.AppKey[float] = web.AppKey("started_at")
WRITER: web.AppKey[LogWriter] = web.AppKey("writer")
REQUEST_LOGGER: web.AppKey[RequestLogger] = web.AppKey("request_logger")
ROUTER: web.AppKey[Router] = web.AppKey("router")
MASTER: web.AppKey[MasterKeyAuth] = web.AppKey("master")
AUTH: web.AppKey[Authenticator] = web.AppKey("auth")
HOOKS: web.AppKey[list[RequestHook]] = web.AppKey("hooks")
CLIENT: web.AppKey[aiohttp.ClientSession] = web.AppKey("client")
DB_PATH: web.AppKey[str] = web.AppKey("db_path")
KEYS_DB_PATH: web.AppKey[str] = web.AppKey("keys_db_path")
EXTRAS: web.AppKey[dict[str, Any]] = web.AppKey("extras")
TRUSTED_PROXIES: web.AppKey[frozenset[str]] = web.AppKey("trusted_proxies")
#: Only in a `serve --workers N` worker: its index and the supervisor's run directory.
WORKER: web.AppKey[WorkerInfo] = web.AppKey("worker")
#: Besides the request log, what else can make /health answer 503 degraded (e.g. Redis down):
#: each returns the reason, or None while all is well.
DEGRADED_CHECKS: web.AppKey[list[Callable[[], str | None]]] = web.AppKey("degraded_checks")
