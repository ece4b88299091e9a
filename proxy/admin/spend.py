"""The spend API's reads of the request log (litellm.db), read-only and synchronous: the routes
run them on a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

# Timestamps are 'YYYY-MM-DD HH:MM:SS.fff' UTC: comparing them with a 'YYYY-MM-DD' text is
# exact and lets SQLite use the timestamp index.
SPEND_TOTALS_SQL = """
SELECT
    COALESCE(SUM(cost), 0) AS total_spend,
    COALESCE(SUM(CASE WHEN timestamp >= date('now') THEN cost END), 0) AS daily_spend,
    COALESCE(SUM(CASE WHEN timestamp >= date('now', 'start of month') THEN cost END), 0) AS monthly_spend
FROM request_log
"""
SPEND_BY_MODEL_SQL = """
SELECT model, SUM(cost) AS spend
FROM request_log
WHERE model != ''
GROUP BY model
ORDER BY spend DESC, model
"""
SPEND_BY_TEAM_SQL = """
SELECT team_id, SUM(cost) AS spend
FROM request_log
WHERE team_id IS NOT NULL
GROUP BY team_id
ORDER BY spend DESC, team_id
"""
LOG_ROWS_SQL = """
SELECT request_id, endpoint, key_hash, key_alias, user_id, team_id, model, upstream_model,
       provider, api_base, cost, prompt_tokens, completion_tokens, total_tokens, timestamp,
       latency, status_code, error_type, metadata, client_ip, stream
FROM request_log
WHERE {where}
ORDER BY id DESC
LIMIT :limit
"""
DAILY_SPEND_SQL = """
SELECT date(timestamp) AS day, key_hash, user_id, team_id, model, SUM(cost) AS spend
FROM request_log
WHERE {where}
GROUP BY day, key_hash, user_id, team_id, model
ORDER BY day
"""
FILTERS = {
    "key_hash": "key_hash = :key_hash",
    "user_id": "user_id = :user_id",
    "team_id": "team_id = :team_id",
    "request_id": "request_id = :request_id",
    "start": "timestamp >= :start",
    "end": "timestamp < :end",
}
CALL_TYPES = {"chat": "acompletion", "embeddings": "aembedding", "completions": "atext_completion"}


@dataclass(frozen=True)
class LogFilter:
    key_hash: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    request_id: str | None = None
    start: date | None = None
    end: date | None = None  # inclusive

    def where(self) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {
            "key_hash": self.key_hash,
            "user_id": self.user_id,
            "team_id": self.team_id,
            "request_id": self.request_id,
            "start": self.start.isoformat() if self.start else None,
            "end": (self.end + timedelta(days=1)).isoformat() if self.end else None,
        }
        clauses = [FILTERS[name] for name, value in params.items() if value is not None]
        return " AND ".join(clauses) or "1", {k: v for k, v in params.items() if v is not None}


@contextmanager
def read_only(path: str | Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA query_only=1")
        conn.row_factory = sqlite3.Row
        yield conn
    finally:
        conn.close()


def spend_info(path: str | Path) -> dict[str, Any]:
    """The guide's /spend/info: all-time, today (UTC) and this calendar month, per model and
    per team."""
    with read_only(path) as conn:
        totals = conn.execute(SPEND_TOTALS_SQL).fetchone()
        by_model = {row["model"]: _usd(row["spend"]) for row in conn.execute(SPEND_BY_MODEL_SQL)}
        by_team = {row["team_id"]: _usd(row["spend"]) for row in conn.execute(SPEND_BY_TEAM_SQL)}
    return {
        "total_spend": _usd(totals["total_spend"]),
        "daily_spend": _usd(totals["daily_spend"]),
        "monthly_spend": _usd(totals["monthly_spend"]),
        "by_model": by_model,
        "by_team": by_team,
    }


def spend_logs(path: str | Path, flt: LogFilter, limit: int) -> list[dict[str, Any]]:
    """Matching requests, newest first, as LiteLLM's SpendLogs rows."""
    where, params = flt.where()
    with read_only(path) as conn:
        rows = conn.execute(LOG_ROWS_SQL.format(where=where), {**params, "limit": limit}).fetchall()
    return [_spend_log(row) for row in rows]


def daily_spend(path: str | Path, flt: LogFilter) -> list[dict[str, Any]]:
    """LiteLLM's summarized /spend/logs: one entry per day of [start, end], zeros included."""
    assert flt.start is not None and flt.end is not None
    where, params = flt.where()
    days: dict[str, dict[str, Any]] = {}
    day = flt.start
    while day <= flt.end:
        days[day.isoformat()] = {"startTime": day.isoformat(), "spend": 0.0, "users": {}, "teams": {}, "models": {}}
        day += timedelta(days=1)
    with read_only(path) as conn:
        for row in conn.execute(DAILY_SPEND_SQL.format(where=where), params):
            entry = days.get(row["day"])
            if entry is None:
                continue
            spend = row["spend"] or 0.0
            entry["spend"] += spend
            if row["key_hash"]:
                entry[row["key_hash"]] = entry.get(row["key_hash"], 0.0) + spend
            if row["user_id"]:
                entry["users"][row["user_id"]] = entry["users"].get(row["user_id"], 0.0) + spend
            if row["team_id"]:
                entry["teams"][row["team_id"]] = entry["teams"].get(row["team_id"], 0.0) + spend
            entry["models"][row["model"]] = entry["models"].get(row["model"], 0.0) + spend
    return list(days.values())


def _spend_log(row: sqlite3.Row) -> dict[str, Any]:
    start = datetime.fromisoformat(row["timestamp"])
    end = start + timedelta(seconds=row["latency"] or 0.0)
    endpoint = row["endpoint"] or ""
    call_type = next((v for k, v in CALL_TYPES.items() if k in endpoint), "acompletion")
    try:
        metadata = json.loads(row["metadata"]) if row["metadata"] else {}
    except ValueError:
        metadata = {}
    return {
        "request_id": row["request_id"],
        "call_type": call_type,
        "api_key": row["key_hash"] or "",
        "key_alias": row["key_alias"],
        "spend": row["cost"],
        "total_tokens": row["total_tokens"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "startTime": _iso(start),
        "endTime": _iso(end),
        "model": row["model"],
        "model_group": row["model"],
        "custom_llm_provider": row["provider"],
        "upstream_model": row["upstream_model"],
        "api_base": row["api_base"],
        "user": row["user_id"],
        "team_id": row["team_id"],
        "metadata": metadata,
        "requester_ip_address": row["client_ip"],
        "stream": bool(row["stream"]),
        "status": "success" if row["status_code"] < 400 else "failure",
        "status_code": row["status_code"],
        "error_type": row["error_type"],
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def _usd(value: float | None) -> float:
    # Sums of many floats carry noise in the 15th digit; a micro-cent is below any price.
    return round(value or 0.0, 10)
