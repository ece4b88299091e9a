"""keys.db: the admin state in SQLite, beside (never inside) the request log.

`KeysDB` is synchronous. The gateway calls it only from its one keys-db thread (backend.py);
the CLI calls it directly. Migrations are `proxy/admin/migrations/NNNN_name.sql`, recorded in
`PRAGMA user_version`, as for the request log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ... import migrations
from ..records import GLOBAL, KEY, MEMBER, Ref, epoch, iso
from ..records.base import split_member
from .base import AlreadyExists, Charge, DuplicateAlias, Missing, Snapshot
from .codecs import CODECS, KEYS

MIGRATIONS_PACKAGE = "proxy.admin"
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
)

SELECT_KEY_BY_ALIAS_SQL = KEYS.select_one_sql.replace(KEYS.where, "key_alias = :key_alias")
# Spend is shared by every gateway process on keys.db: each adds what it charged since its last
# flush, and the first to flush after a period ended starts the new one (the others then find
# the reset time in the future and only add). {table}/{where} come from the codecs.
ROLL_SQL = """
UPDATE {table} SET spend = 0, budget_reset_at = :next_reset
WHERE {where} AND budget_reset_at IS NOT NULL AND budget_reset_at <= :now
"""
CHARGE_SQL = "UPDATE {table} SET spend = spend + :delta WHERE {where}"
# A period this process started (no reset time stored yet: a tier gave an end user a
# budget_duration) or ended (the duration was removed) is stored; two set times: storage wins,
# as another process may have started the next period already.
SET_PERIOD_SQL = """
UPDATE {table} SET budget_reset_at = :budget_reset_at
WHERE {where} AND (budget_reset_at IS NULL OR :budget_reset_at IS NULL)
"""
SELECT_SPEND_SQL = "SELECT spend, budget_reset_at FROM {table} WHERE {where}"
SET_SPEND_SQL = "UPDATE {table} SET spend = :spend WHERE {where}"
# The gateway budget (litellm_settings.max_budget): one row of `budgets` named 'global'.
ROLL_BUDGET_SQL = """
UPDATE budgets SET spend = 0, budget_reset_at = :next_reset
WHERE name = :name AND budget_reset_at IS NOT NULL AND budget_reset_at <= :now
"""
CHARGE_BUDGET_SQL = """
INSERT INTO budgets (name, spend, budget_duration, budget_reset_at, updated_at)
VALUES (:name, :delta, :budget_duration, :budget_reset_at, :now)
ON CONFLICT (name) DO UPDATE SET spend = spend + excluded.spend, updated_at = excluded.updated_at
"""
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


def migrate(conn: sqlite3.Connection) -> int:
    return migrations.apply(conn, MIGRATIONS_PACKAGE)


def ref_params(ref: Ref) -> dict[str, str]:
    codec = CODECS[ref.kind]
    return codec.key_params(split_member(ref.ident) if ref.kind == MEMBER else ref.ident)


class KeysDB:
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

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    # -- entities -------------------------------------------------------------------------
    def load(self) -> Snapshot:
        records = {
            kind: [codec.from_row(r) for r in self.conn.execute(codec.select_all_sql)]
            for kind, codec in CODECS.items()
        }
        return Snapshot(records=records, global_budget=self.load_budget(GLOBAL))

    def load_all(self) -> list[Any]:
        """Every key (the keys CLI's list)."""
        return [KEYS.from_row(r) for r in self.conn.execute(KEYS.select_all_sql)]

    def all(self, kind: str) -> list[Any]:
        codec = CODECS[kind]
        return [codec.from_row(r) for r in self.conn.execute(codec.select_all_sql)]

    def get(self, kind: str, ident: str) -> Any | None:
        ref = Ref(kind, ident)
        row = self.conn.execute(CODECS[kind].select_one_sql, ref_params(ref)).fetchone()
        return CODECS[kind].from_row(row) if row else None

    def get_by_alias(self, alias: str) -> Any | None:
        row = self.conn.execute(SELECT_KEY_BY_ALIAS_SQL, {"key_alias": alias}).fetchone()
        return KEYS.from_row(row) if row else None

    def insert(self, record: Any) -> None:
        with self.transaction():
            self._insert(record)

    def update(self, record: Any) -> bool:
        with self.transaction():
            return self._update(record)

    def delete(self, kind: str, idents: Iterable[str]) -> int:
        with self.transaction():
            return sum(self._delete(Ref(kind, i)) for i in idents)

    def apply(self, inserts: Sequence[Any], updates: Sequence[Any], deletes: Sequence[Ref]) -> None:
        with self.transaction():
            for ref in deletes:
                self._delete(ref)
            for record in updates:
                if not self._update(record):
                    raise Missing(f"{record.KIND} {record.ident}")
            for record in inserts:
                self._insert(record)

    def _insert(self, record: Any) -> None:
        codec = CODECS[record.KIND]
        try:
            self.conn.execute(codec.insert_sql, codec.to_row(record))
        except sqlite3.IntegrityError as exc:
            if record.KIND == KEY and "key_alias" in str(exc):
                raise DuplicateAlias(record.key_alias) from None
            raise AlreadyExists(f"{record.KIND} {record.ident}") from None

    def _update(self, record: Any) -> bool:
        codec = CODECS[record.KIND]
        try:
            return self.conn.execute(codec.update_sql, codec.to_row(record)).rowcount == 1
        except sqlite3.IntegrityError as exc:
            if record.KIND == KEY and "key_alias" in str(exc):
                raise DuplicateAlias(record.key_alias) from None
            raise

    def _delete(self, ref: Ref) -> int:
        return self.conn.execute(CODECS[ref.kind].delete_sql, ref_params(ref)).rowcount

    # -- spend ----------------------------------------------------------------------------
    def charge(self, charges: Sequence[Charge]) -> dict[Ref, tuple[float, float | None]]:
        """Add each counter's new spend, rolling periods that ended, in one transaction;
        returns the totals now stored, other processes' charges included."""
        totals: dict[Ref, tuple[float, float | None]] = {}
        with self.transaction():
            for c in charges:
                if c.ref.kind == GLOBAL:
                    totals[c.ref] = self._charge_global(c)
                    continue
                codec = CODECS[c.ref.kind]
                params = {
                    **ref_params(c.ref), "delta": c.delta, "now": iso(c.now), "next_reset": iso(c.next_reset),
                    "budget_reset_at": iso(c.budget_reset_at),
                }
                if c.next_reset is not None:
                    self.conn.execute(ROLL_SQL.format(table=codec.table, where=codec.where), params)
                self.conn.execute(SET_PERIOD_SQL.format(table=codec.table, where=codec.where), params)
                self.conn.execute(CHARGE_SQL.format(table=codec.table, where=codec.where), params)
                row = self.conn.execute(SELECT_SPEND_SQL.format(table=codec.table, where=codec.where), params).fetchone()
                if row is not None:
                    totals[c.ref] = (float(row[0]), epoch(row[1]))
        return totals

    def _charge_global(self, c: Charge) -> tuple[float, float | None]:
        params = {
            "name": c.ref.ident, "delta": c.delta, "now": iso(c.now), "next_reset": iso(c.next_reset),
            "budget_duration": c.budget_duration, "budget_reset_at": iso(c.budget_reset_at),
        }
        if c.next_reset is not None:
            self.conn.execute(ROLL_BUDGET_SQL, params)
        self.conn.execute(CHARGE_BUDGET_SQL, params)
        row = self.conn.execute(SELECT_BUDGET_SQL, params).fetchone()
        return float(row[0]), epoch(row[2])

    def set_spend(self, ref: Ref, spend: float) -> None:
        codec = CODECS[ref.kind]
        self.conn.execute(SET_SPEND_SQL.format(table=codec.table, where=codec.where), {**ref_params(ref), "spend": spend})

    def save_global(self, spend: float, budget_duration: str | None, reset_at: float | None, now: float) -> None:
        self.conn.execute(SAVE_BUDGET_SQL, {
            "name": GLOBAL, "spend": spend, "budget_duration": budget_duration,
            "budget_reset_at": iso(reset_at), "updated_at": iso(now),
        })

    def load_budget(self, name: str) -> tuple[float, str | None, float | None] | None:
        row = self.conn.execute(SELECT_BUDGET_SQL, {"name": name}).fetchone()
        if row is None:
            return None
        return float(row[0]), row[1], epoch(row[2])
