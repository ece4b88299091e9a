"""`python -m proxy keys export|import`: move keys.db's content to and from the Redis the
gateways share. Keys travel as their hashes, never as raw keys (keys.db holds no raw key).

  export   keys.db -> Redis: adds the keys, users, teams, members, end users, budget tiers and
           the gateway budget Redis lacks, with their spend; what Redis has is kept
           (--replace: Redis is made equal to keys.db)
  import   Redis -> keys.db: keys.db is made equal to Redis (a keys.db with keys of its own is
           first saved as keys.db.pre-redis)
"""

from __future__ import annotations

import argparse
import asyncio

from ...errors import OperationError
from ..store.redis_config import redis_url
from .common import admin_config, keys_db_path


def add_arguments(actions: argparse._SubParsersAction) -> None:
    export = actions.add_parser(
        "export", help="copy keys.db's keys, users, teams, budgets and spend into Redis (hashes only)")
    export.add_argument("--replace", action="store_true",
                        help="make Redis equal to keys.db (drops what only Redis has)")
    actions.add_parser("import", help="copy Redis's keys, users, teams, budgets and spend into keys.db")


def run(args: argparse.Namespace) -> int:
    config = admin_config(args)
    url = redis_url(config)
    if not url:
        raise OperationError(
            "no Redis configured: set general_settings.redis_url (or router_settings.redis_host, "
            "REDIS_URL, REDIS_HOST) or pass --redis-url")
    path = keys_db_path(args)
    if args.action == "export":
        return asyncio.run(_export(url, path, replace=args.replace))
    return asyncio.run(_import(url, path))


async def _export(url: str, path: object, *, replace: bool) -> int:
    from pathlib import Path

    from ..store.redis_copy import LocalCopy
    from ..store.redis_link import NETWORK_ERRORS, RedisLink
    from ..store.redis_store import RedisStore

    local = LocalCopy(Path(str(path))).read()
    if local is None:
        raise OperationError(f"{path}: no such keys database")
    snapshot = local[0]
    link = RedisLink(url)
    try:
        written, kept = await RedisStore(link).seed(snapshot, "replace" if replace else "merge")
    except NETWORK_ERRORS as exc:
        raise OperationError(f"Redis at {link.public} is unreachable: {exc}") from None
    finally:
        await link.stop()
    keys = len(snapshot.records.get("key", []))
    print(f"exported {path} to {link.public}: {written} records written ({keys} keys in the file), "
          f"{kept} already in Redis kept")
    return 0


async def _import(url: str, path: object) -> int:
    from pathlib import Path

    from ..errors import StoreUnavailable
    from ..store.redis_copy import LocalCopy, rows_of
    from ..store.redis_link import NETWORK_ERRORS, RedisLink
    from ..store.redis_store import RedisStore

    link = RedisLink(url)
    store = RedisStore(link)
    try:
        snapshot = await store.load()
    except (StoreUnavailable, *NETWORK_ERRORS):
        raise OperationError(f"Redis at {link.public} is unreachable or holds no gateway data") from None
    finally:
        await link.stop()
    copy = LocalCopy(Path(str(path)))
    await asyncio.to_thread(copy.write_rows, rows_of(snapshot), snapshot.global_budget)
    counts = ", ".join(f"{len(records)} {kind}" for kind, records in snapshot.records.items() if records)
    print(f"imported {link.public} into {path}: {counts or 'nothing'}")
    return 0
