"""Every budget keys.db holds: spent, left, and when it runs out at its current rate.

`read_budgets()` is the one place the report reads keys.db (read-only, never the key or its
hash into a row the site shows). Each scope is one query returning the same columns, so a new
kind of budget (users, teams, end users) is one more (scope, table, query) in BUDGET_QUERIES:

    scope, name (what the report shows), spend (this period), max_budget, budget_duration,
    budget_reset_at, match_column/match_value (how request_log rows are attributed to it)

The gateway's own budget has its limit in config.yaml (litellm_settings.max_budget) and its
spend in keys.db's budgets table (name 'global').

Run-out: rate = the budget's cost per day over the last 7 days of the request log;
left / rate days from now, unless the period resets first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..errors import Unavailable

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

RATE_DAYS = 7

#: scope -> SQL over keys.db. Display names never include a key or its hash: the alias, else
#: the stored display form (sk-…abcd). match_value is internal: it never reaches a row.
BUDGET_QUERIES: tuple[tuple[str, str, str], ...] = (
    ("key", "keys", """
        SELECT COALESCE(key_alias, key_name) AS name, spend, max_budget, budget_duration,
               budget_reset_at, 'key_hash' AS match_column, key_hash AS match_value
        FROM keys WHERE max_budget IS NOT NULL
    """),
)
GLOBAL_BUDGET_SQL = "SELECT spend, budget_reset_at FROM budgets WHERE name = 'global'"
#: Spend per day of one budget's requests; match_column comes from BUDGET_QUERIES only.
SPEND_SINCE_SQL = """
SELECT COALESCE(SUM(cost), 0) AS cost FROM request_log
WHERE {match} timestamp >= :start AND timestamp < :end
"""
MATCH_COLUMNS = {"key_hash", "user_id", "team_id"}


@dataclass(frozen=True)
class BudgetRow:
    scope: str  # gateway | key (| user | team | end_user as keys.db grows)
    name: str
    spend: float
    max_budget: float
    budget_duration: str | None
    budget_reset_at: str | None  # ISO-8601 UTC text as keys.db stores it
    match_column: str | None  # None: every request (the gateway)
    match_value: str | None


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
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only=1")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rows: list[BudgetRow] = []
        if gateway_max_budget is not None:
            found = conn.execute(GLOBAL_BUDGET_SQL).fetchone() if "budgets" in tables else None
            rows.append(BudgetRow("gateway", "the gateway", float(found["spend"]) if found else 0.0,
                                  gateway_max_budget, gateway_duration,
                                  found["budget_reset_at"] if found else None, None, None))
        for scope, table, sql in BUDGET_QUERIES:
            if table not in tables:
                continue
            for r in conn.execute(sql):
                column = r["match_column"] if r["match_column"] in MATCH_COLUMNS else None
                rows.append(BudgetRow(scope, display_name(r["name"]), float(r["spend"] or 0),
                                      float(r["max_budget"]), r["budget_duration"],
                                      r["budget_reset_at"], column, r["match_value"]))
        conn.close()
    except sqlite3.DatabaseError as exc:
        raise Unavailable(f"keys.db could not be read ({exc}): no budgets to show.") from None
    return rows


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _rate(reader: Reader, budget: BudgetRow) -> float:
    now = reader.clock.now
    params: dict[str, object] = {"start": reader.stamp(now - timedelta(days=RATE_DAYS)),
                                 "end": reader.stamp(now)}
    match = ""
    if budget.match_column:
        if budget.match_column not in reader.columns:
            return 0.0
        match = f"{budget.match_column} = :value AND"
        params["value"] = budget.match_value
    found = reader.query(SPEND_SINCE_SQL.format(match=match), params)
    return float(found[0]["cost"]) / RATE_DAYS


def budget_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Budgets, most urgent first: spent ones, then by run-out date, then by share used."""
    src = reader.sources
    if src.keys_db is None:
        raise Unavailable("No keys.db given: no budgets to show.")
    now = reader.clock.now
    out = []
    for b in read_budgets(src.keys_db, src.gateway_max_budget, src.gateway_budget_duration):
        left = b.max_budget - b.spend
        rate = _rate(reader, b)
        reset = _parse_iso(b.budget_reset_at)
        runs_out: datetime | None = None
        if left <= 0:
            status, urgency = "spent", (0, 0.0)
        elif rate <= 0:
            status, urgency = "no spend in the last 7 days", (3, 0.0)
        else:
            runs_out = now + timedelta(days=left / rate)
            if reset is not None and reset <= runs_out:
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
