"""What the admin commands (`python -m proxy keys|users|teams ...`) share: which keys.db, an
AdminService on it for one command, output helpers.

The commands work on keys.db directly, running gateway or not, through the same operations as
the HTTP API: a running gateway accepts a new key at once and notices other changes within a
second (it watches keys.db). With Redis configured (general_settings.redis_url, LiteLLM's
router_settings.redis_* or REDIS_* variables, or --redis-url) they work on Redis, which every
gateway shares; keys.db is then this host's copy.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ...errors import GatewayError, OperationError
from ...settings import Config
from ..service import AdminService

T = TypeVar("T")


def add_common(parser: argparse.ArgumentParser, **kwargs: Any) -> None:
    parser.add_argument("--config", "-c", help="config.yaml, for general_settings.keys_database_path / database_path", **kwargs)
    parser.add_argument("--db", help="request log file; keys.db defaults to the same folder", **kwargs)
    parser.add_argument("--keys-db", help="keys SQLite file (overrides --db and the config)", **kwargs)
    parser.add_argument("--redis-url", help="the Redis the gateways share (overrides the config and REDIS_*)", **kwargs)


def common_after_actions(actions: argparse._SubParsersAction) -> None:
    """Let the common options follow the action too (`keys list --config c.yaml`): each action
    accepts them without a default of its own, so one given before the action is kept."""
    for sub in dict.fromkeys(actions.choices.values()):
        add_common(sub, default=argparse.SUPPRESS)


#: The config keys the admin commands read (the model list and the rest stay unread).
ADMIN_CONFIG = {
    "general_settings": ("database_path", "keys_database_path", "redis_url"),
    "router_settings": ("redis_url", "redis_host", "redis_port", "redis_password"),
}


def admin_config(args: argparse.Namespace) -> Config:
    """The settings the commands need, from --config (or the default config.yaml) and --redis-url."""
    from ...config import config_path, load_config

    path = config_path(getattr(args, "config", None))
    config = load_config(path, only=ADMIN_CONFIG) if path is not None else Config()
    redis = getattr(args, "redis_url", None)
    if redis:
        config = dataclasses.replace(config, general=dataclasses.replace(config.general, redis_url=redis))
    return config


def keys_db_path(args: argparse.Namespace) -> Path:
    """The same file `serve` uses: --keys-db, else the config's, else keys.db beside the log."""
    if args.keys_db:
        return Path(args.keys_db)
    config = admin_config(args)
    if config.general.keys_database_path:
        return Path(config.general.keys_database_path)
    return Path(args.db or config.general.database_path).with_name("keys.db")


def run_with_service(args: argparse.Namespace, action: Callable[[AdminService], Awaitable[T]]) -> T:
    """Run `action` against keys.db; named errors become one-line messages (exit 1)."""

    async def main() -> T:
        service = AdminService(keys_db_path(args), admin_config(args))
        await service.start(sync=False, gateway=False)
        try:
            return await action(service)
        finally:
            await service.stop()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise OperationError(exc.message) from None


def print_json(data: Any, *, lines: bool = False) -> None:
    if lines:
        for item in data:
            print(json.dumps(item, sort_keys=True, ensure_ascii=False))
    else:
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]], noun: str) -> None:
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())
    print(f"{len(rows)} {noun}(s)")


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def parse_json_arg(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OperationError(f"{name} is not valid JSON: {exc}") from None


def models_arg(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [m.strip() for m in text.split(",") if m.strip()]
