"""The Keys page: every virtual key, user and team keys.db holds, with its budget and use.

keys.db is read read-only; a key is shown by its alias and its display form (`sk-…abcd`, as
the gateway stored it), never by its hash, which is only used to match its requests in the log.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..analysis.budgets import display_name
from ..catalogue import Column, TableDef, Window
from .sources import keys_db, tables_of, totals_by

if TYPE_CHECKING:
    from ..data import Reader

C = Column
DAYS = 30
KEYS_SQL = """
SELECT key_hash, key_name, key_alias, user_id, team_id, models, max_budget, spend,
       budget_duration, budget_reset_at, expires_at, blocked, created_at
FROM keys ORDER BY created_at, key_alias
"""
USERS_SQL = """
SELECT u.user_id, u.user_alias, u.user_email, u.user_role, u.models, u.max_budget, u.spend,
       u.budget_duration, u.budget_reset_at, u.blocked,
       (SELECT COUNT(*) FROM keys AS k WHERE k.user_id = u.user_id) AS keys,
       (SELECT COUNT(*) FROM team_members AS m WHERE m.user_id = u.user_id) AS teams
FROM users AS u ORDER BY u.created_at, u.user_id
"""
TEAMS_SQL = """
SELECT t.team_id, t.team_alias, t.models, t.max_budget, t.spend, t.budget_duration,
       t.budget_reset_at, t.blocked,
       (SELECT COUNT(*) FROM keys AS k WHERE k.team_id = t.team_id) AS keys,
       (SELECT COUNT(*) FROM team_members AS m WHERE m.team_id = t.team_id) AS members
FROM teams AS t ORDER BY t.created_at, t.team_id
"""
#: The newest request of one key: one seek on the (key_hash, timestamp) index per key.
LAST_USED_SQL = "SELECT MAX(timestamp) AS last FROM request_log WHERE key_hash = :key_hash AND timestamp < :end"


def _models(raw: str | None) -> str:
    try:
        models = json.loads(raw) if raw else []
    except ValueError:
        models = []
    return ", ".join(str(m) for m in models) if models else "all"


def _when(text: str | None) -> str | None:
    """keys.db's ISO-8601 UTC text as the report shows times: 'YYYY-MM-DD HH:MM:SS'."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _budget(row: sqlite3.Row) -> dict[str, object]:
    spend = float(row["spend"] or 0.0)
    budget = row["max_budget"]
    return {
        "max_budget": budget, "spend": spend,
        "left": None if budget is None else round(float(budget) - spend, 6),
        "budget_duration": row["budget_duration"], "resets": _when(row["budget_reset_at"]),
    }


def key_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    with keys_db(reader.sources.keys_db) as conn:
        found = conn.execute(KEYS_SQL).fetchall() if "keys" in tables_of(conn) else []
    usage = totals_by(reader, "key_hash", DAYS)
    now = reader.clock.now.timestamp()
    rows = []
    for r in found:
        requests, cost = usage.get(r["key_hash"], (0, 0.0))
        last = None
        if "key_hash" in reader.columns:
            last = reader.query(LAST_USED_SQL, {"key_hash": r["key_hash"], "end": bounds["end"]})[0]["last"]
        expires = _when(r["expires_at"])
        expired = bool(r["expires_at"]) and datetime.fromisoformat(
            r["expires_at"].replace("Z", "+00:00")).timestamp() <= now
        rows.append({
            "key": display_name(r["key_alias"] or r["key_name"]),
            "key_name": display_name(r["key_name"]),
            "user_id": r["user_id"], "team_id": r["team_id"], "models": _models(r["models"]),
            **_budget(r), "expires": expires, "last_used": last[:19] if last else None,
            "requests_30d": requests, "cost_30d": round(cost, 6),
            "status": "blocked" if r["blocked"] else "expired" if expired else "active",
        })
    return rows


def user_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    with keys_db(reader.sources.keys_db) as conn:
        found = conn.execute(USERS_SQL).fetchall() if "users" in tables_of(conn) else []
    usage = totals_by(reader, "user_id", DAYS)
    return [{
        "user": r["user_alias"] or r["user_id"], "user_id": r["user_id"],
        "user_email": r["user_email"], "user_role": r["user_role"], "models": _models(r["models"]),
        **_budget(r), "keys": r["keys"], "teams": r["teams"],
        "requests_30d": usage.get(r["user_id"], (0, 0.0))[0],
        "cost_30d": round(usage.get(r["user_id"], (0, 0.0))[1], 6),
        "status": "blocked" if r["blocked"] else "active",
    } for r in found]


def team_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    with keys_db(reader.sources.keys_db) as conn:
        found = conn.execute(TEAMS_SQL).fetchall() if "teams" in tables_of(conn) else []
    usage = totals_by(reader, "team_id", DAYS)
    return [{
        "team": r["team_alias"] or r["team_id"], "team_id": r["team_id"],
        "models": _models(r["models"]), **_budget(r), "keys": r["keys"], "members": r["members"],
        "requests_30d": usage.get(r["team_id"], (0, 0.0))[0],
        "cost_30d": round(usage.get(r["team_id"], (0, 0.0))[1], 6),
        "status": "blocked" if r["blocked"] else "active",
    } for r in found]


BUDGET_COLUMNS = (
    C("max_budget", "Budget", "usd"), C("spend", "Spent this period", "usd"), C("left", "Left", "usd"),
    C("budget_duration", "Period"), C("resets", "Resets (UTC)", "ts"),
)
USE_30 = (C("requests_30d", "Requests, 30 days", "int"), C("cost_30d", "Cost, 30 days", "usd"))
NOW = Window("rolling", DAYS)
NOTE = ("As keys.db held them when the report was built (spend as last flushed by the gateways); "
        "requests and cost over the last 30 days from the request log.")

TABLES = (
    TableDef("virtual_keys", "Virtual keys", "", (
        C("key", "Key"), C("key_name", "Display form"), C("user_id", "User", "label"),
        C("team_id", "Team", "label"), C("models", "Models"), *BUDGET_COLUMNS,
        C("expires", "Expires (UTC)", "ts"), C("last_used", "Last used (UTC)", "ts"), *USE_30,
        C("status", "Status"),
    ), NOW, NOTE + " A key shows its alias, else its display form: never the key or its hash.",
        compute=key_rows, show_rows=200, empty="keys.db holds no virtual keys."),
    TableDef("users", "Users", "", (
        C("user", "User"), C("user_id", "User id"), C("user_email", "Email", "label"),
        C("user_role", "Role", "label"), C("models", "Models"), *BUDGET_COLUMNS,
        C("keys", "Keys", "int"), C("teams", "Teams", "int"), *USE_30, C("status", "Status"),
    ), NOW, NOTE, compute=user_rows, show_rows=200, empty="keys.db holds no users."),
    TableDef("teams", "Teams", "", (
        C("team", "Team"), C("team_id", "Team id"), C("models", "Models"), *BUDGET_COLUMNS,
        C("members", "Members", "int"), C("keys", "Keys", "int"), *USE_30, C("status", "Status"),
    ), NOW, NOTE, compute=team_rows, show_rows=200, empty="keys.db holds no teams."),
)
