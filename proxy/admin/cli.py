"""`python -m proxy keys create|list|info|revoke`: virtual keys without curl.

Works on keys.db directly, running gateway or not: a running gateway accepts a new key at once
and stops accepting a revoked one within a second (it watches keys.db for changes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ..errors import GatewayError, OperationError
from ..settings import Config
from .fields import build_key, parse_key_fields
from .record import KeyRecord, iso, key_hash_of
from .store import DuplicateAlias, KeyStore

EXAMPLES = """examples:
  python -m proxy keys create --alias ci-bot --user-id ci --models gpt-4o-mini --max-budget 5 --budget-duration 30d
  python -m proxy keys create --alias alice --rpm 60 --tpm 100000 --max-parallel 4 --duration 90d
  python -m proxy keys list
  python -m proxy keys list --json
  python -m proxy keys info ci-bot                 # by alias, raw key (sk-...) or key hash
  python -m proxy keys revoke ci-bot alice         # aliases, raw keys or hashes; all or none
  python -m proxy keys list --config config.yaml   # keys.db beside the configured database
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.add_argument("--config", "-c", help="config.yaml, for general_settings.keys_database_path / database_path")
    parser.add_argument("--db", help="request log file; keys.db defaults to the same folder")
    parser.add_argument("--keys-db", help="keys SQLite file (overrides --db and the config)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,info,revoke}")

    create = actions.add_parser("create", help="create a key and print it (shown once)", epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    create.add_argument("--alias", dest="key_alias", help="unique name for the key")
    create.add_argument("--user-id", help="user the key's requests are logged under")
    create.add_argument("--team-id")
    create.add_argument("--models", help="comma-separated model names the key may use (default: all)")
    create.add_argument("--max-budget", type=float, help="USD per budget period")
    create.add_argument("--budget-duration", help="budget period: 30s, 1h, 1d, 7d, 30d")
    create.add_argument("--duration", help="expire after: 30s, 1h, 1d, 90d (default: never)")
    create.add_argument("--rpm", dest="rpm_limit", type=int, help="requests per minute")
    create.add_argument("--tpm", dest="tpm_limit", type=int, help="tokens per minute")
    create.add_argument("--max-parallel", dest="max_parallel_requests", type=int, help="concurrent requests")
    create.add_argument("--metadata", help="JSON object stored with the key")
    create.add_argument("--json", action="store_true", help="print the /key/generate response as JSON")

    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="JSON lines, one key per line")

    info = actions.add_parser("info", help="show one key")
    info.add_argument("key", help="alias, raw key (sk-...) or key hash")

    revoke = actions.add_parser("revoke", help="delete keys (all or none)")
    revoke.add_argument("keys", nargs="+", help="aliases, raw keys or key hashes")


def run(args: argparse.Namespace) -> int:
    """Create, list, inspect or revoke virtual keys in keys.db."""
    store = KeyStore(keys_db_path(args))
    try:
        return {"create": _create, "list": _list, "info": _info, "revoke": _revoke}[args.action](store, args)
    except GatewayError as exc:
        raise OperationError(exc.message) from None
    finally:
        store.close()


def keys_db_path(args: argparse.Namespace) -> Path:
    """The same file `serve` uses: --keys-db, else the config's, else keys.db beside the log."""
    if args.keys_db:
        return Path(args.keys_db)
    from ..config import config_path, load_config

    path = config_path(args.config)
    config = (
        load_config(path, only={"general_settings": ("database_path", "keys_database_path")})
        if path is not None
        else Config()
    )
    if config.general.keys_database_path:
        return Path(config.general.keys_database_path)
    return Path(args.db or config.general.database_path).with_name("keys.db")


def _create(store: KeyStore, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("key_alias", "user_id", "team_id", "max_budget", "budget_duration", "duration",
                     "rpm_limit", "tpm_limit", "max_parallel_requests")
    }
    if args.models:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.metadata:
        try:
            body["metadata"] = json.loads(args.metadata)
        except ValueError as exc:
            raise OperationError(f"--metadata is not valid JSON: {exc}") from None
    raw, rec = build_key(parse_key_fields(body), time.time())
    try:
        store.insert(rec)
    except DuplicateAlias:
        raise OperationError(f"alias {rec.key_alias!r} is already used by another key") from None
    if args.json:
        print(json.dumps({**rec.info(), "key": raw, "token_id": rec.key_hash}, indent=2, ensure_ascii=False))
    else:
        print(f"created {rec.label}  hash {rec.key_hash[:12]}")
        print(f"key: {raw}")
        print("Store it now: the key is not kept and cannot be shown again.")
    return 0


def _list(store: KeyStore, args: argparse.Namespace) -> int:
    records = store.load_all()
    if args.json:
        for rec in records:
            print(json.dumps(rec.info(), sort_keys=True, ensure_ascii=False))
        return 0
    header = ("KEY", "ALIAS", "USER", "SPEND", "MAX_BUDGET", "EXPIRES", "MODELS")
    rows = [header] + [_row(rec) for rec in records]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())
    print(f"{len(records)} key(s)")
    return 0


def _row(rec: KeyRecord) -> tuple[str, ...]:
    return (
        rec.key_name,
        rec.key_alias or "-",
        rec.user_id or "-",
        f"{rec.spend:.6f}",
        "-" if rec.max_budget is None else f"{rec.max_budget:g}",
        iso(rec.expires_at) or "never",
        ",".join(rec.models) or "all",
    )


def _info(store: KeyStore, args: argparse.Namespace) -> int:
    rec = _resolve(store, args.key)
    print(json.dumps(rec.info(), indent=2, sort_keys=True, ensure_ascii=False))
    return 0


def _revoke(store: KeyStore, args: argparse.Namespace) -> int:
    records = [_resolve(store, ref) for ref in args.keys]
    store.delete(rec.key_hash for rec in records)
    for rec in records:
        print(f"revoked {rec.label}  hash {rec.key_hash[:12]}")
    return 0


def _resolve(store: KeyStore, ref: str) -> KeyRecord:
    rec = store.get_by_alias(ref) or store.get(key_hash_of(ref))
    if rec is None:
        # Echo aliases and hashes, never something that may be a raw key.
        shown = "" if ref.startswith("sk-") else f" {ref!r}"
        raise OperationError(f"no key{shown} found (give an alias, a raw key or a key hash)")
    return rec
