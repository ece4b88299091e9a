"""Every budget keys.db holds: spent, left, and when it runs out at its current rate.

`read_budgets()` is the one place the report reads keys.db (read-only; never a key or its
hash into a row the site shows). Each kind of budget is one query returning the same columns,
so a new kind is one more (scope, table, query) in BUDGET_QUERIES:

    name (what the report shows), spend (this period), max_budget, budget_duration,
    budget_reset_at, and key_hash / user_id / team_id: the request_log columns whose values
    identify the budget's requests (NULL where they do not apply)

The gateway's own budget has its limit in config.yaml (litellm_settings.max_budget) and its
spend in keys.db's budgets table (name 'global').

Run-out: rate = the budget's cost per day over the last 7 days of the request log (one GROUP BY
per kind of match, not one query per budget); left / rate days from now, unless the period
resets first.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from proxy.config import parse_duration
from proxy.errors import ConfigError

from .. import views
from ..errors import Unavailable

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

RATE_DAYS = 7
MATCH_COLUMNS = ("key_hash", "user_id", "team_id")

#: (scope, keys.db table, query). Display names: aliases, ids, a key's display form (sk-…abcd).
BUDGET_QUERIES: tuple[tuple[str, str, str], ...] = (
    ("key", "keys", """
        SELECT COALESCE(key_alias, key_name) AS name, spend, max_budget, budget_duration,
               budget_reset_at, key_hash, NULL AS user_id, NULL AS team_id
        FROM keys WHERE max_budget IS NOT NULL
    """),
    ("user", "users", """
        SELECT COALESCE(user_alias, user_id) AS name, spend, max_budget, budget_duration,
               budget_reset_at, NULL AS key_hash, user_id, NULL AS team_id
        FROM users WHERE max_budget IS NOT NULL
    """),
    ("team", "teams", """
        SELECT COALESCE(team_alias, team_id) AS name, spend, max_budget, budget_duration,
               budget_reset_at, NULL AS key_hash, NULL AS user_id, team_id
        FROM teams WHERE max_budget IS NOT NULL
    """),
    ("member", "team_members", """
        SELECT m.user_id || ' in ' || COALESCE(t.team_alias, m.team_id) AS name, m.spend,
               m.max_budget_in_team AS max_budget, NULL AS budget_duration, m.budget_reset_at,
               NULL AS key_hash, m.user_id, m.team_id
        FROM team_members AS m LEFT JOIN teams AS t USING (team_id)
        WHERE m.max_budget_in_team IS NOT NULL
    """),
    ("end user", "end_users", """
        SELECT COALESCE(e.alias, e.user_id) AS name, e.spend, b.max_budget, b.budget_duration,
               e.budget_reset_at, NULL AS key_hash, e.user_id, NULL AS team_id
        FROM end_users AS e JOIN budget_tiers AS b USING (budget_id)
        WHERE b.max_budget IS NOT NULL
    """),
)
GLOBAL_BUDGET_SQL = "SELECT spend, budget_reset_at FROM budgets WHERE name = 'global'"
#: Cost of the last 7 days per value of the match columns ({columns}: from MATCH_COLUMNS).
SPEND_BY_SQL = """
SELECT {columns}, SUM(cost) AS cost FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY {columns}
"""
SPEND_SQL = """
SELECT COALESCE(SUM(cost), 0) AS cost FROM request_log
WHERE timestamp >= :start AND timestamp < :end
"""


@dataclass(frozen=True)
class BudgetRow:
    scope: str  # gateway | key | user | team | member | end user
    name: str
    spend: float
    max_budget: float
    budget_duration: str | None
    budget_reset_at: str | None  # ISO-8601 UTC text as keys.db stores it
    match: tuple[tuple[str, str], ...]  # request_log (column, value) pairs; () = every request


def display_name(name: str | None) -> str:
    """A key's display form, defensively: never more than its last four characters."""
    if not name:
        return "(unnamed)"
    if name.startswith("sk-") and "…" not in name and len(name) > 12:
        return f"sk-…{name[-4:]}"
    return name


def read_budgets(keys_db: Path, gateway_max_budget: float | None,
                 gateway_duration: str | None) -> list[BudgetRow]:
    """Every budget with a limit, read-only; raises Unavailable when keys.db cannot be read."""
    if not keys_db.is_file():
        raise Unavailable("No keys.db beside the log (nor at general_settings.keys_database_path): "
                          "no budgets to show.")
    uri = f"file:{quote(str(keys_db.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only=1")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            rows: list[BudgetRow] = []
            if gateway_max_budget is not None:
                found = conn.execute(GLOBAL_BUDGET_SQL).fetchone() if "budgets" in tables else None
                rows.append(BudgetRow("gateway", "the gateway", float(found["spend"]) if found else 0.0,
                                      gateway_max_budget, gateway_duration,
                                      found["budget_reset_at"] if found else None, ()))
            for scope, table, sql in BUDGET_QUERIES:
                if table not in tables:
                    continue
                for r in conn.execute(sql):
                    match = tuple((c, str(r[c])) for c in MATCH_COLUMNS if r[c] is not None)
                    rows.append(BudgetRow(scope, display_name(r["name"]), float(r["spend"] or 0),
                                          float(r["max_budget"]), r["budget_duration"],
                                          r["budget_reset_at"], match))
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise Unavailable(f"keys.db could not be read ({exc}): no budgets to show.") from None
    return rows


def _rates(reader: Reader, budgets: list[BudgetRow]) -> dict[tuple[tuple[str, str], ...], float]:
    """Cost per day over the last RATE_DAYS days for every budget's match."""
    now = reader.clock.now
    params = {"start": reader.stamp(now - timedelta(days=RATE_DAYS)), "end": reader.stamp(now)}
    rates: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
    wanted = sorted({tuple(c for c, _ in b.match) for b in budgets})
    if reader.rollups:  # key, user and team spend from the report cache (one read)
        who = reader.aggregates.counters(views.WHO, now - timedelta(days=RATE_DAYS), now)
        for columns in wanted:
            for r in who:
                key = tuple((c, str(r[c])) for c in columns if r[c] is not None)
                if len(key) == len(columns):
                    rates[key] += float(r["cost"] or 0) / RATE_DAYS  # type: ignore[arg-type]
        return rates
    for columns in wanted:
        if not columns:
            rates[()] = float(reader.query(SPEND_SQL, params)[0]["cost"]) / RATE_DAYS
        elif set(columns) <= reader.columns:
            sql = SPEND_BY_SQL.format(columns=", ".join(columns))
            for r in reader.query(sql, params):
                key = tuple((c, str(r[c])) for c in columns if r[c] is not None)
                if len(key) == len(columns):
                    rates[key] = float(r["cost"] or 0) / RATE_DAYS
    return rates


def _after(now: datetime, duration: str | None) -> datetime | None:
    if not duration:
        return None
    try:
        return now + timedelta(seconds=parse_duration(duration, "budget_duration"))
    except ConfigError:
        return None


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def budget_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Budgets, most urgent first: spent ones, then by run-out date, then by share used."""
    src = reader.sources
    if src.keys_db is None:
        raise Unavailable("No keys.db given: no budgets to show.")
    now = reader.clock.now
    out = []
    budgets = read_budgets(src.keys_db, src.gateway_max_budget, src.gateway_budget_duration)
    rates = _rates(reader, budgets)
    for b in budgets:
        left = b.max_budget - b.spend
        rate = rates.get(b.match, 0.0)
        reset = _parse_iso(b.budget_reset_at)
        # A period not started yet (no reset stored) still ends within one duration.
        latest_reset = reset or _after(now, b.budget_duration)
        runs_out: datetime | None = None
        if left <= 0:
            status, urgency = "spent", (0, 0.0)
        elif rate <= 0:
            status, urgency = "no spend in the last 7 days", (3, 0.0)
        else:
            runs_out = now + timedelta(days=left / rate)
            if latest_reset is not None and latest_reset <= runs_out:
                status, urgency = "resets first", (2, -b.spend / b.max_budget if b.max_budget else 0)
            else:
                status, urgency = "runs out", (1, runs_out.timestamp())
        out.append((urgency, b.scope, b.name, {
            "scope": b.scope, "name": b.name, "spend": round(b.spend, 6),
            "max_budget": b.max_budget, "left": round(left, 6),
            "used_pct": round(100 * b.spend / b.max_budget, 1) if b.max_budget else None,
            "budget_duration": b.budget_duration,
            "resets": reset.strftime("%Y-%m-%d %H:%M") if reset else None,
            "rate_per_day": round(rate, 6),
            "runs_out": runs_out.strftime("%Y-%m-%d %H:%M") if runs_out else None,
            "status": status,
        }))
    out.sort(key=lambda item: (item[0], item[1], item[2]))
    return [row for *_, row in out]
