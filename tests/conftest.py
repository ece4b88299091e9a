"""Shared fixtures: the real gateway and the real fake upstream, on ephemeral ports.

`gateway_factory(raw_config=None, **create_app_kwargs)` starts `create_app()` on a real
TCP port (pytest-aiohttp's server, port 0) in front of `fake_upstream`, and returns a
`Gateway` with its URL, app, database path and an `openai.AsyncOpenAI` client.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.config import parse_config
from proxy.demo.processes import free_port  # noqa: F401 (tests import it from here)
from proxy.fake_upstream import FakeOptions, create_fake_app
from proxy.server.app import create_app
from proxy.state import WRITER

from .redis_helpers import redis_server  # noqa: F401  (a real redis-server per test)

if TYPE_CHECKING:
    from proxy.logdb.writer import WriterStatus

MASTER_KEY = "sk-test-master-7f3a9c"


def default_raw_config(upstream_base: str, dead_base: str) -> dict[str, Any]:
    def model(name: str, upstream: str, **params: Any) -> dict[str, Any]:
        return {
            "model_name": name,
            "litellm_params": {"model": upstream, "api_base": upstream_base, "api_key": "sk-upstream-secret", **params},
        }

    return {
        "model_list": [
            model("gpt-4o-mini", "openai/gpt-4o-mini"),
            model("text-embedding-3-small", "openai/text-embedding-3-small"),
            model("local-llama", "openai/local-llama"),  # no price anywhere: unpriced
            model("house-model", "openai/house-model", input_cost_per_token=0.000001, output_cost_per_token=0.000002),
            model("broken", "openai/error-503"),
            model("bad-request", "openai/error-400"),
            model("slow", "openai/slow-2", timeout=0.3),
            model("nousage", "openai/nousage"),
            model("cutoff", "openai/cutoff"),
            {"model_name": "down", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": dead_base}},
        ],
        "general_settings": {"master_key": MASTER_KEY, "log_file": None},
    }


@dataclass
class Gateway:
    server: TestServer
    app: web.Application
    db_path: Path
    client: openai.AsyncOpenAI

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def flush(self) -> None:
        assert self.app[WRITER].wait_idle(10), "request log did not flush"

    def app_status(self) -> WriterStatus:
        """The request log's state (LogWriter.status())."""
        return self.app[WRITER].status()

    def rows(self, sql: str = "SELECT * FROM request_log ORDER BY id", params: Any = ()) -> list[sqlite3.Row]:
        self.flush()
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


@pytest.fixture
async def fake_upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    return await aiohttp_server(create_fake_app(FakeOptions()))


@pytest.fixture
def upstream_base(fake_upstream: TestServer) -> str:
    return str(fake_upstream.make_url("/v1"))


@pytest.fixture
def dead_base() -> Iterator[str]:
    # A port held bound but not listening refuses connections, and no server started later in
    # the test (on port 0) can be given it, as happened with a free port that was let go.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/v1"


@pytest.fixture
async def gateway_factory(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    upstream_base: str,
    dead_base: str,
    tmp_path: Path,
) -> Callable[..., Awaitable[Gateway]]:
    clients: list[openai.AsyncOpenAI] = []

    async def start(raw_config: dict[str, Any] | None = None, *, db_path: Path | None = None, **kwargs: Any) -> Gateway:
        raw = raw_config if raw_config is not None else default_raw_config(upstream_base, dead_base)
        config = parse_config(raw, env={})
        path = db_path or tmp_path / "litellm.db"
        app = create_app(config, db_path=path, **kwargs)
        server = await aiohttp_server(app)
        client = openai.AsyncOpenAI(
            base_url=str(server.make_url("/v1")),
            api_key=config.general.master_key or "no-key",
            max_retries=0,
            timeout=10,
        )
        clients.append(client)
        return Gateway(server=server, app=app, db_path=path, client=client)

    yield start  # type: ignore[misc]
    for client in clients:
        await client.close()


@pytest.fixture
async def gateway(gateway_factory: Callable[..., Awaitable[Gateway]]) -> Gateway:
    return await gateway_factory()


class GatewayLog:
    """gateway.log configured from general_settings as `serve` does it; `stop()` puts logging
    back (closing our file handler writes out what it buffered)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, general: dict[str, Any]) -> dict[str, Any]:
        from proxy.logsetup import configure_logging

        general = {**general, "log_file": str(self.path)}
        config = parse_config({"general_settings": general}, env={})
        configure_logging(config.general, config.litellm)
        return general

    def stop(self) -> str:
        """Restore stderr-only logging; returns what the file holds."""
        from proxy.logsetup import configure_logging

        default = parse_config({}, env={})
        configure_logging(default.general, default.litellm, log_file="")
        return self.path.read_text() if self.path.exists() else ""


@pytest.fixture
def gateway_log(tmp_path: Path) -> Any:
    log = GatewayLog(tmp_path / "gateway.log")
    yield log
    log.stop()



@pytest.fixture(autouse=True, scope="session")
def _report_cache_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Reports built through the CLI keep their cache (sitegen/cache.py) out of ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    patch.undo()
