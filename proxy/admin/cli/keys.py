"""`python -m proxy keys create|list|info|update|block|unblock|regenerate|revoke`: virtual keys
without curl, through the same operations as /key/*."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import OperationError
from ..fields import KEY_ACTIVE, KEY_SPECIAL, KEY_STORED, parse
from ..ops import keys as ops
from ..records import KeyRecord, iso
from ..records.key import key_hash_of
from ..service import AdminService
from . import transfer
from .common import (
    add_common,
    common_after_actions,
    models_arg,
    money,
    parse_json_arg,
    print_json,
    print_table,
    run_with_service,
)

EXAMPLES = """examples:
  python -m proxy keys create --alias ci-bot --user-id ci --models gpt-4o-mini --max-budget 5 --budget-duration 30d
  python -m proxy keys create --alias alice --team-id research --rpm 60 --tpm 100000 --max-parallel 4 --duration 90d
  python -m proxy keys list
  python -m proxy keys list --json
  python -m proxy keys info ci-bot                 # by alias, raw key (sk-...) or key hash
  python -m proxy keys update ci-bot --max-budget 10 --models 'openai/*'
  python -m proxy keys block ci-bot                # unblock ci-bot to let it in again
  python -m proxy keys regenerate ci-bot           # new secret, same settings and spend
  python -m proxy keys revoke ci-bot alice         # aliases, raw keys or hashes; all or none
  python -m proxy keys list --config config.yaml   # keys.db beside the configured database
  python -m proxy keys --config config.yaml export # keys.db -> general_settings.redis_url
  python -m proxy keys --redis-url redis://redis.internal:6379/0 import   # Redis -> keys.db
"""
#: CLI flag -> LiteLLM field, for create and update.
FLAGS = (
    ("--alias", "key_alias", str, "unique name for the key"),
    ("--user-id", "user_id", str, "user the key belongs to (created if new)"),
    ("--team-id", "team_id", str, "team the key belongs to (must exist: python -m proxy teams create)"),
    ("--models", "models", str, "comma-separated models, wildcards (openai/*) or access groups (default: all)"),
    ("--max-budget", "max_budget", float, "USD per budget period"),
    ("--budget-duration", "budget_duration", str, "budget period: 30s, 1h, 1d, 7d, 30d"),
    ("--duration", "duration", str, "expire after: 30s, 1h, 1d, 90d (default: never)"),
    ("--rpm", "rpm_limit", int, "requests per minute"),
    ("--tpm", "tpm_limit", int, "tokens per minute"),
    ("--max-parallel", "max_parallel_requests", int, "concurrent requests"),
    ("--metadata", "metadata", str, "JSON object stored with the key"),
    ("--aliases", "aliases", str, 'JSON object of model aliases, e.g. {"fast": "gpt-4o-mini"}'),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    add_common(parser)
    actions = parser.add_subparsers(dest="action", required=True,
                                    metavar="{create,list,info,update,block,unblock,regenerate,revoke,export,import}")
    raw = argparse.RawDescriptionHelpFormatter
    create = actions.add_parser("create", help="create a key and print it (shown once)", epilog=EXAMPLES, formatter_class=raw)
    update = actions.add_parser("update", help="change a key's settings", epilog=EXAMPLES, formatter_class=raw)
    update.add_argument("key", help="alias, raw key (sk-...) or key hash")
    for sub in (create, update):
        for flag, dest, kind, text in FLAGS:
            sub.add_argument(flag, dest=dest, type=kind, help=text)
    create.add_argument("--json", action="store_true", help="print the /key/generate response as JSON")

    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="JSON lines, one key per line")
    listing.add_argument("--user-id", help="only this user's keys")
    listing.add_argument("--team-id", help="only this team's keys")
    for name, text in (("info", "show one key"), ("block", "refuse a key until unblocked"),
                       ("unblock", "let a blocked key in again"),
                       ("regenerate", "give a key a new secret (printed once); the old one stops working")):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("key", help="alias, raw key (sk-...) or key hash")
    revoke = actions.add_parser("revoke", help="delete keys (all or none)")
    revoke.add_argument("keys", nargs="+", help="aliases, raw keys or key hashes")
    transfer.add_arguments(actions)
    common_after_actions(actions)


def run(args: argparse.Namespace) -> int:
    """Create, list, inspect, change or revoke virtual keys in keys.db (or the shared Redis);
    export and import move keys.db's content to and from Redis."""
    if args.action in ("export", "import"):
        return transfer.run(args)
    action = {
        "create": _create, "list": _list, "info": _info, "update": _update, "block": _block,
        "unblock": _block, "regenerate": _regenerate, "revoke": _revoke,
    }[args.action]
    return run_with_service(args, lambda service: action(service, args))


def settings_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {dest: getattr(args, dest) for _flag, dest, _kind, _text in FLAGS}
    body = {k: v for k, v in body.items() if v is not None}
    if "models" in body:
        body["models"] = models_arg(body["models"])
    for name in ("metadata", "aliases"):
        if name in body:
            body[name] = parse_json_arg(body[name], f"--{name}")
    return body


def parse_key(body: dict[str, Any], *, update: bool = False) -> Any:
    return parse(body, KEY_ACTIVE, KEY_STORED, KEY_SPECIAL, update=update, what="a key")


async def _create(service: AdminService, args: argparse.Namespace) -> int:
    raw, rec = await ops.generate(service, parse_key(settings_body(args)))
    if args.json:
        print_json({**rec.info(), "key": raw, "token_id": rec.key_hash})
    else:
        print(f"created {rec.label}  hash {rec.key_hash[:12]}")
        print(f"key: {raw}")
        print("Store it now: the key is not kept and cannot be shown again.")
    return 0


async def _list(service: AdminService, args: argparse.Namespace) -> int:
    records = sorted(service.registry.keys_of(user_id=args.user_id, team_id=args.team_id),
                     key=lambda r: (r.created_at, r.key_hash))
    if args.json:
        print_json([rec.info() for rec in records], lines=True)
        return 0
    header = ("KEY", "ALIAS", "USER", "TEAM", "SPEND", "MAX_BUDGET", "EXPIRES", "MODELS", "STATE")
    print_table(header, [_row(rec) for rec in records], "key")
    return 0


def _row(rec: KeyRecord) -> tuple[str, ...]:
    return (
        rec.key_name, rec.key_alias or "-", rec.user_id or "-", rec.team_id or "-",
        f"{rec.spend:.6f}", money(rec.max_budget), iso(rec.expires_at) or "never",
        ",".join(rec.models) or "all", "blocked" if rec.blocked else "active",
    )


async def _info(service: AdminService, args: argparse.Namespace) -> int:
    print_json((await resolve(service, args.key)).info())
    return 0


async def _update(service: AdminService, args: argparse.Namespace) -> int:
    rec = await resolve(service, args.key)
    rec = await ops.update(service, rec.key_hash, parse_key(settings_body(args), update=True))
    print(f"updated {rec.label}  hash {rec.key_hash[:12]}")
    return 0


async def _block(service: AdminService, args: argparse.Namespace) -> int:
    rec = await resolve(service, args.key)
    blocked = args.action == "block"
    rec = await ops.update(service, rec.key_hash, parse_key({"blocked": blocked}, update=True))
    print(f"{'blocked' if blocked else 'unblocked'} {rec.label}  hash {rec.key_hash[:12]}")
    return 0


async def _regenerate(service: AdminService, args: argparse.Namespace) -> int:
    rec = await resolve(service, args.key)
    raw, new = await ops.regenerate(service, rec.key_hash, parse_key({}, update=True))
    print(f"regenerated {new.label}  hash {new.key_hash[:12]} (was {rec.key_hash[:12]})")
    print(f"key: {raw}")
    print("Store it now: the key is not kept and cannot be shown again.")
    return 0


async def _revoke(service: AdminService, args: argparse.Namespace) -> int:
    records = [await resolve(service, ref) for ref in args.keys]
    await ops.delete(service, [rec.key_hash for rec in records])
    for rec in records:
        print(f"revoked {rec.label}  hash {rec.key_hash[:12]}")
    return 0


async def resolve(service: AdminService, ref: str) -> KeyRecord:
    key_hash = service.registry.alias_hash(ref) or key_hash_of(ref)
    rec = await service.lookup(key_hash)
    if rec is None:
        # Echo aliases and hashes, never something that may be a raw key.
        shown = "" if ref.startswith("sk-") else f" {ref!r}"
        raise OperationError(f"no key{shown} found (give an alias, a raw key or a key hash)")
    return rec
