"""`python -m proxy users ...` and `python -m proxy teams ...`: users and teams without curl,
through the same operations as /user/* and /team/*."""

from __future__ import annotations

import argparse
from typing import Any

from ..ops import teams as team_ops
from ..ops import users as user_ops
from ..service import AdminService
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

USER_EXAMPLES = """examples:
  python -m proxy users create --user-id alice --email alice@example.com --max-budget 20 --budget-duration 30d
  python -m proxy users create --user-id ci --team research --no-key --rpm 120
  python -m proxy users list
  python -m proxy users info alice                 # the user, its keys and teams (JSON)
  python -m proxy users update alice --max-budget 50 --models 'gpt-4o*'
  python -m proxy users delete alice               # also deletes alice's keys
"""
TEAM_EXAMPLES = """examples:
  python -m proxy teams create --team-id research --alias Research --max-budget 100 --budget-duration 30d --models 'openai/*'
  python -m proxy teams add-member research alice --max-budget-in-team 10
  python -m proxy teams list
  python -m proxy teams info research              # the team, its members and keys (JSON)
  python -m proxy teams update research --tpm 200000
  python -m proxy teams block research             # every key of the team is refused
  python -m proxy teams delete research            # also deletes the team's keys
"""
#: Settings users and teams share: CLI flag -> LiteLLM field.
COMMON = (
    ("--models", "models", str, "comma-separated models, wildcards (openai/*) or access groups (default: all)"),
    ("--max-budget", "max_budget", float, "USD per budget period, all keys together"),
    ("--budget-duration", "budget_duration", str, "budget period: 30s, 1h, 1d, 7d, 30d"),
    ("--rpm", "rpm_limit", int, "requests per minute, all keys together"),
    ("--tpm", "tpm_limit", int, "tokens per minute, all keys together"),
    ("--max-parallel", "max_parallel_requests", int, "concurrent requests, all keys together"),
    ("--metadata", "metadata", str, "JSON object stored with it"),
)
USER_FLAGS = (("--alias", "user_alias", str, "a name for people"), ("--email", "user_email", str, "e-mail address"),
              ("--role", "user_role", str, "proxy_admin, proxy_admin_viewer, internal_user, internal_user_viewer"),
              *COMMON)
TEAM_FLAGS = (("--alias", "team_alias", str, "a name for people"), *COMMON)


def _flags(parser: argparse.ArgumentParser, flags: tuple[tuple[str, str, type, str], ...]) -> None:
    for flag, dest, kind, text in flags:
        parser.add_argument(flag, dest=dest, type=kind, help=text)


def _body(args: argparse.Namespace, flags: tuple[tuple[str, str, type, str], ...]) -> dict[str, Any]:
    body = {dest: getattr(args, dest) for _f, dest, _k, _t in flags if getattr(args, dest, None) is not None}
    if "models" in body:
        body["models"] = models_arg(body["models"])
    if "metadata" in body:
        body["metadata"] = parse_json_arg(body["metadata"], "--metadata")
    return body


# -- users ----------------------------------------------------------------------------------


def add_user_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = USER_EXAMPLES
    add_common(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,info,update,delete}")
    raw = argparse.RawDescriptionHelpFormatter
    create = actions.add_parser("create", help="create a user (and a key for it, printed once)",
                                epilog=USER_EXAMPLES, formatter_class=raw)
    create.add_argument("--user-id", help="default: a new UUID")
    _flags(create, USER_FLAGS)
    create.add_argument("--team", action="append", dest="teams", help="join this team (repeatable)")
    create.add_argument("--no-key", action="store_true", help="do not create a key for the user")
    create.add_argument("--key-alias", help="alias of the key created for the user")
    create.add_argument("--json", action="store_true", help="print the /user/new response as JSON")
    update = actions.add_parser("update", help="change a user's settings", epilog=USER_EXAMPLES, formatter_class=raw)
    update.add_argument("user_id")
    _flags(update, USER_FLAGS)
    listing = actions.add_parser("list", help="list users")
    listing.add_argument("--json", action="store_true", help="JSON lines, one user per line")
    info = actions.add_parser("info", help="show a user with its keys and teams")
    info.add_argument("user_id")
    delete = actions.add_parser("delete", help="delete users and their keys (all or none)")
    delete.add_argument("user_ids", nargs="+")
    common_after_actions(actions)


def run_users(args: argparse.Namespace) -> int:
    """Create, list, inspect, change or delete users (groups of keys with one budget)."""
    return run_with_service(args, lambda service: _users(service, args))


async def _users(service: AdminService, args: argparse.Namespace) -> int:
    registry = service.registry
    if args.action == "create":
        body = _body(args, USER_FLAGS)
        body.update({k: v for k, v in (("user_id", args.user_id), ("teams", args.teams),
                                       ("key_alias", args.key_alias)) if v is not None})
        body["auto_create_key"] = not args.no_key
        made = await user_ops.new(service, user_ops.parse_user(body))
        if args.json:
            print_json(made)
        else:
            print(f"created user {made['user_id']}")
            if made["key"]:
                print(f"key: {made['key']}")
                print("Store it now: the key is not kept and cannot be shown again.")
    elif args.action == "update":
        rec = await user_ops.update(service, {"user_id": args.user_id, **_body(args, USER_FLAGS)})
        print(f"updated user {rec.user_id}")
    elif args.action == "list":
        users = sorted(registry.users.values(), key=lambda u: (u.created_at, u.user_id))
        if args.json:
            print_json([u.info(registry.teams_of(u.user_id)) for u in users], lines=True)
        else:
            rows = [(u.user_id, u.user_alias or "-", ",".join(registry.teams_of(u.user_id)) or "-",
                     str(len(registry.keys_of(user_id=u.user_id))), f"{u.spend:.6f}", money(u.max_budget),
                     ",".join(u.models) or "all", "blocked" if u.blocked else "active") for u in users]
            print_table(("USER", "ALIAS", "TEAMS", "KEYS", "SPEND", "MAX_BUDGET", "MODELS", "STATE"), rows, "user")
    elif args.action == "info":
        await user_ops.find(service, args.user_id)
        from ...server.auth import OPEN_ACCESS

        print_json(user_ops.info(service, OPEN_ACCESS, args.user_id))
    else:
        deleted = await user_ops.delete(service, args.user_ids)
        print(f"deleted users {', '.join(deleted)} (and their keys)")
    return 0


# -- teams ----------------------------------------------------------------------------------


def add_team_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = TEAM_EXAMPLES
    add_common(parser)
    actions = parser.add_subparsers(
        dest="action", required=True,
        metavar="{create,list,info,update,delete,add-member,remove-member,block,unblock}")
    raw = argparse.RawDescriptionHelpFormatter
    create = actions.add_parser("create", help="create a team", epilog=TEAM_EXAMPLES, formatter_class=raw)
    create.add_argument("--team-id", help="default: a new UUID")
    _flags(create, TEAM_FLAGS)
    create.add_argument("--member", action="append", dest="members", help="user id of a member (repeatable)")
    create.add_argument("--json", action="store_true", help="print the /team/new response as JSON")
    update = actions.add_parser("update", help="change a team's settings", epilog=TEAM_EXAMPLES, formatter_class=raw)
    update.add_argument("team_id")
    _flags(update, TEAM_FLAGS)
    listing = actions.add_parser("list", help="list teams")
    listing.add_argument("--json", action="store_true", help="JSON lines, one team per line")
    for name, text in (("info", "show a team with its members and keys"), ("block", "refuse every key of the team"),
                       ("unblock", "let the team's keys in again")):
        actions.add_parser(name, help=text).add_argument("team_id")
    delete = actions.add_parser("delete", help="delete teams and their keys (all or none)")
    delete.add_argument("team_ids", nargs="+")
    add = actions.add_parser("add-member", help="add a user (created if new) to a team")
    add.add_argument("team_id")
    add.add_argument("user_id")
    add.add_argument("--role", choices=team_ops.ROLES, default="user")
    add.add_argument("--max-budget-in-team", type=float, help="USD the user may spend through the team's keys")
    remove = actions.add_parser("remove-member", help="remove a user from a team")
    remove.add_argument("team_id")
    remove.add_argument("user_id")
    common_after_actions(actions)


def run_teams(args: argparse.Namespace) -> int:
    """Create, list, inspect, change or delete teams and their members."""
    return run_with_service(args, lambda service: _teams(service, args))


async def _teams(service: AdminService, args: argparse.Namespace) -> int:
    registry = service.registry
    action = args.action
    if action == "create":
        body = _body(args, TEAM_FLAGS)
        if args.team_id:
            body["team_id"] = args.team_id
        if args.members:
            body["members"] = args.members
        made = await team_ops.new(service, team_ops.parse_team(body))
        print_json(made) if args.json else print(f"created team {made['team_id']}")
    elif action == "update":
        await team_ops.update(service, {"team_id": args.team_id, **_body(args, TEAM_FLAGS)})
        print(f"updated team {args.team_id}")
    elif action == "list":
        teams = sorted(registry.teams.values(), key=lambda t: (t.created_at, t.team_id))
        if args.json:
            print_json([team_ops.response(service, t) for t in teams], lines=True)
        else:
            rows = [(t.team_id, t.team_alias or "-", str(len(registry.members_of(t.team_id))),
                     str(len(registry.keys_of(team_id=t.team_id))), f"{t.spend:.6f}", money(t.max_budget),
                     ",".join(t.models) or "all", "blocked" if t.blocked else "active") for t in teams]
            print_table(("TEAM", "ALIAS", "MEMBERS", "KEYS", "SPEND", "MAX_BUDGET", "MODELS", "STATE"), rows, "team")
    elif action == "info":
        await team_ops.find(service, args.team_id)
        print_json(team_ops.info(service, args.team_id))
    elif action in ("block", "unblock"):
        await team_ops.block(service, {"team_id": args.team_id}, action == "block")
        print(f"{action}ed team {args.team_id}")
    elif action == "delete":
        await team_ops.delete(service, args.team_ids)
        print(f"deleted teams {', '.join(args.team_ids)} (and their keys)")
    elif action == "add-member":
        await team_ops.member_add(service, {"team_id": args.team_id, "max_budget_in_team": args.max_budget_in_team,
                                            "member": {"user_id": args.user_id, "role": args.role}})
        print(f"added {args.user_id} to team {args.team_id}")
    else:
        await team_ops.member_delete(service, {"team_id": args.team_id, "user_id": args.user_id})
        print(f"removed {args.user_id} from team {args.team_id}")
    return 0
