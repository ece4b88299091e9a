"""keys.db: virtual keys and budget state, in SQLite, beside (never inside) the request log.

`KeyStore` is synchronous. The gateway calls it only from its one keys-db thread (service.py);
the CLI calls it directly. Migrations are `migrations/NNNN_name.sql`, recorded in
`PRAGMA user_version`, as for the request log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .. import migrations
from .record import KeyRecord, epoch, iso

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
)

KEY_COLUMNS = (
    "key_hash", "key_name", "key_alias", "user_id", "team_id", "models", "max_budget",
    "budget_duration", "budget_reset_at", "spend", "expires_at", "rpm_limit", "tpm_limit",
    "max_parallel_requests", "metadata", "blocked", "created_at", "updated_at",
)
SELECT_KEYS_SQL = f"SELECT {', '.join(KEY_COLUMNS)} FROM keys"
SELECT_ALL_KEYS_SQL = SELECT_KEYS_SQL + " ORDER BY created_at, key_hash"
SELECT_KEY_SQL = SELECT_KEYS_SQL + " WHERE key_hash = :key_hash"
SELECT_KEY_BY_ALIAS_SQL = SELECT_KEYS_SQL + " WHERE key_alias = :key_alias"
INSERT_KEY_SQL = "INSERT INTO keys ({cols}) VALUES ({params})".format(
    cols=", ".join(KEY_COLUMNS), params=", ".join(f":{c}" for c in KEY_COLUMNS)
)
# Spend is never part of a settings update: other gateway processes add to it concurrently.
UPDATE_KEY_SQL = "UPDATE keys SET {sets} WHERE key_hash = :key_hash".format(
    sets=", ".join(
        f"{c} = :{c}" for c in KEY_COLUMNS if c not in ("key_hash", "key_name", "created_at", "spend")
    )
)
SET_KEY_SPEND_SQL = "UPDATE keys SET spend = :spend WHERE key_hash = :key_hash"
# Spend is shared by every gateway process on keys.db: each adds what it charged since its last
# flush, and the first to flush after a period ended starts the new one (the others then find
# the reset time in the future and only add).
ROLL_KEY_SQL = """
UPDATE keys SET spend = 0, budget_reset_at = :next_reset
WHERE key_hash = :key_hash AND budget_reset_at IS NOT NULL AND budget_reset_at <= :now
"""
CHARGE_KEY_SQL = "UPDATE keys SET spend = spend + :delta WHERE key_hash = :key_hash"
SELECT_KEY_SPEND_SQL = "SELECT spend, budget_reset_at FROM keys WHERE key_hash = :key_hash"
ROLL_BUDGET_SQL = """
UPDATE budgets SET spend = 0, budget_reset_at = :next_reset
WHERE name = :name AND budget_reset_at IS NOT NULL AND budget_reset_at <= :now
"""
CHARGE_BUDGET_SQL = """
INSERT INTO budgets (name, spend, budget_duration, budget_reset_at, updated_at)
VALUES (:name, :delta, :budget_duration, :budget_reset_at, :now)
ON CONFLICT (name) DO UPDATE SET spend = spend + excluded.spend, updated_at = excluded.updated_at
"""
DELETE_KEY_SQL = "DELETE FROM keys WHERE key_hash = :key_hash"
SAVE_KEY_SPEND_SQL = (
    "UPDATE keys SET spend = :spend, budget_reset_at = :budget_reset_at WHERE key_hash = :key_hash"
)
SELECT_BUDGET_SQL = "SELECT spend, budget_duration, budget_reset_at FROM budgets WHERE name = :name"
SAVE_BUDGET_SQL = """
INSERT INTO budgets (name, spend, budget_duration, budget_reset_at, updated_at)
VALUES (:name, :spend, :budget_duration, :budget_reset_at, :updated_at)
ON CONFLICT (name) DO UPDATE SET
    spend = excluded.spend,
    budget_duration = excluded.budget_duration,
    budget_reset_at = excluded.budget_reset_at,
    updated_at = excluded.updated_at
"""


class DuplicateAlias(Exception):
    """Another key already has this alias."""


def migrate(conn: sqlite3.Connection) -> int:
    return migrations.apply(conn, __package__)


def to_row(rec: KeyRecord) -> dict[str, Any]:
    return {
        "key_hash": rec.key_hash,
        "key_name": rec.key_name,
        "key_alias": rec.key_alias,
        "user_id": rec.user_id,
        "team_id": rec.team_id,
        "models": json.dumps(list(rec.models)),
        "max_budget": rec.max_budget,
        "budget_duration": rec.budget_duration,
        "budget_reset_at": iso(rec.budget_reset_at),
        "spend": rec.spend,
        "expires_at": iso(rec.expires_at),
        "rpm_limit": rec.rpm_limit,
        "tpm_limit": rec.tpm_limit,
        "max_parallel_requests": rec.max_parallel_requests,
        "metadata": json.dumps(rec.metadata, sort_keys=True, default=str),
        "blocked": int(rec.blocked),
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }


def from_row(row: Sequence[Any]) -> KeyRecord:
    r = dict(zip(KEY_COLUMNS, row, strict=True))
    return KeyRecord(
        key_hash=r["key_hash"],
        key_name=r["key_name"],
        key_alias=r["key_alias"],
        user_id=r["user_id"],
        team_id=r["team_id"],
        models=tuple(json.loads(r["models"] or "[]")),
        max_budget=r["max_budget"],
        budget_duration=r["budget_duration"],
        budget_reset_at=epoch(r["budget_reset_at"]),
        spend=r["spend"] or 0.0,
        expires_at=epoch(r["expires_at"]),
        rpm_limit=r["rpm_limit"],
        tpm_limit=r["tpm_limit"],
        max_parallel_requests=r["max_parallel_requests"],
        metadata=json.loads(r["metadata"] or "{}"),
        blocked=bool(r["blocked"]),
        created_at=epoch(r["created_at"]) or 0.0,
        updated_at=epoch(r["updated_at"]) or 0.0,
    )


class KeyStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            self.conn.execute(pragma)
        migrate(self.conn)

    def close(self) -> None:
        self.conn.close()

    def data_version(self) -> int:
        """Changes whenever another connection (the CLI, another process) commits."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def load_all(self) -> list[KeyRecord]:
        return [from_row(r) for r in self.conn.execute(SELECT_ALL_KEYS_SQL)]

    def get(self, key_hash: str) -> KeyRecord | None:
        row = self.conn.execute(SELECT_KEY_SQL, {"key_hash": key_hash}).fetchone()
        return from_row(row) if row else None

    def get_by_alias(self, alias: str) -> KeyRecord | None:
        row = self.conn.execute(SELECT_KEY_BY_ALIAS_SQL, {"key_alias": alias}).fetchone()
        return from_row(row) if row else None

    def insert(self, rec: KeyRecord) -> None:
        try:
            self.conn.execute(INSERT_KEY_SQL, to_row(rec))
        except sqlite3.IntegrityError as exc:
            if "key_alias" in str(exc):
                raise DuplicateAlias(rec.key_alias) from None
            raise

    def update(self, row: dict[str, Any]) -> bool:
        """Write a full key row (from `to_row`); False when the key no longer exists."""
        try:
            return self.conn.execute(UPDATE_KEY_SQL, row).rowcount == 1
        except sqlite3.IntegrityError as exc:
            if "key_alias" in str(exc):
                raise DuplicateAlias(row["key_alias"]) from None
            raise

    def delete(self, key_hashes: Iterable[str]) -> int:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            count = sum(self.conn.execute(DELETE_KEY_SQL, {"key_hash": h}).rowcount for h in key_hashes)
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise
        return count

    def save_spend(self, keys: Sequence[dict[str, Any]], budgets: Sequence[dict[str, Any]]) -> None:
        """Write spend counters as absolute values (start-up adoption of the gateway budget)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany(SAVE_KEY_SPEND_SQL, keys)
            self.conn.executemany(SAVE_BUDGET_SQL, budgets)
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise

    def charge(
        self, keys: Sequence[dict[str, Any]], budget: dict[str, Any] | None
    ) -> tuple[dict[str, tuple[float, float | None]], tuple[float, float | None] | None]:
        """Add each key's (and the gateway's) new spend, rolling periods that ended, in one
        transaction; returns the totals now stored, other processes' charges included.

        keys: {key_hash, delta, now, next_reset}; budget: {name, delta, budget_duration,
        budget_reset_at, now, next_reset} — times as ISO text.
        """
        totals: dict[str, tuple[float, float | None]] = {}
        stored_budget = None
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for charge in keys:
                if charge["next_reset"] is not None:
                    self.conn.execute(ROLL_KEY_SQL, charge)
                self.conn.execute(CHARGE_KEY_SQL, charge)
                row = self.conn.execute(SELECT_KEY_SPEND_SQL, charge).fetchone()
                if row is not None:
                    totals[charge["key_hash"]] = (float(row[0]), epoch(row[1]))
            if budget is not None:
                if budget["next_reset"] is not None:
                    self.conn.execute(ROLL_BUDGET_SQL, budget)
                self.conn.execute(CHARGE_BUDGET_SQL, budget)
                row = self.conn.execute(SELECT_BUDGET_SQL, budget).fetchone()
                stored_budget = (float(row[0]), epoch(row[2]))
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise
        return totals, stored_budget

    def set_spend(self, key_hash: str, spend: float) -> None:
        self.conn.execute(SET_KEY_SPEND_SQL, {"key_hash": key_hash, "spend": spend})

    def load_budget(self, name: str) -> tuple[float, str | None, float | None] | None:
        row = self.conn.execute(SELECT_BUDGET_SQL, {"name": name}).fetchone()
        if row is None:
            return None
        return float(row[0]), row[1], epoch(row[2])
