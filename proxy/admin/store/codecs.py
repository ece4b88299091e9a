"""Rows of keys.db ⇄ records: one Codec per table, its SQL built once from its column list.

Columns are the record's fields of the same name; a codec says which hold JSON, times or
booleans. `spend` is the spend ledger's: a settings update never writes it, because other
gateway processes add to it concurrently. `budget_reset_at` is written with the settings
(a changed budget_duration starts a new period) and by the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..records import (
    BudgetTier,
    EndUserRecord,
    KeyRecord,
    MemberRecord,
    ModelRecord,
    TeamRecord,
    UserRecord,
)
from ..records.base import END_USER, KEY, MEMBER, MODEL, TEAM, TIER, USER, epoch, iso

LEDGER_COLUMNS = ("spend",)


@dataclass(frozen=True)
class Codec:
    kind: str
    table: str
    record: type
    columns: tuple[str, ...]
    pk: tuple[str, ...]
    json: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    bools: tuple[str, ...] = ()
    tuples: tuple[str, ...] = ()  # JSON lists held as tuples in memory
    order: str = "created_at"

    # -- SQL ------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        return " AND ".join(f"{c} = :{c}" for c in self.pk)

    @property
    def select_all_sql(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.table} ORDER BY {self.order}, {', '.join(self.pk)}"

    @property
    def select_one_sql(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.table} WHERE {self.where}"

    @property
    def insert_sql(self) -> str:
        return "INSERT INTO {t} ({c}) VALUES ({p})".format(
            t=self.table, c=", ".join(self.columns), p=", ".join(f":{c}" for c in self.columns)
        )

    @property
    def update_sql(self) -> str:
        settable = [c for c in self.columns if c not in self.pk and c not in LEDGER_COLUMNS and c != "created_at"]
        return f"UPDATE {self.table} SET {', '.join(f'{c} = :{c}' for c in settable)} WHERE {self.where}"

    @property
    def delete_sql(self) -> str:
        return f"DELETE FROM {self.table} WHERE {self.where}"

    # -- conversion -----------------------------------------------------------------------
    def key_params(self, ident: str | Sequence[str]) -> dict[str, str]:
        values = (ident,) if isinstance(ident, str) else tuple(ident)
        return dict(zip(self.pk, values, strict=True))

    def to_row(self, rec: Any) -> dict[str, Any]:
        row = {}
        for c in self.columns:
            value = getattr(rec, c)
            if c in self.json:
                value = json.dumps(list(value) if c in self.tuples else value, sort_keys=True, default=str)
            elif c in self.times:
                value = iso(value)
            elif c in self.bools:
                value = int(bool(value))
            row[c] = value
        return row

    def from_row(self, row: Sequence[Any]) -> Any:
        values: dict[str, Any] = {}
        for c, value in zip(self.columns, row, strict=True):
            if c in self.json:
                value = json.loads(value) if value else None
                if c in self.tuples:
                    value = tuple(value or ())
                elif value is None:
                    continue  # the record's default ({} or [])
            elif c in self.times:
                value = epoch(value)
                if value is None and c in ("created_at", "updated_at"):
                    value = 0.0
            elif c in self.bools:
                value = bool(value)
            elif c == "spend":
                value = float(value or 0.0)
            values[c] = value
        return self.record(**values)


_LIMITS = ("rpm_limit", "tpm_limit", "max_parallel_requests")
_BUDGET = ("max_budget", "soft_budget", "budget_duration", "budget_reset_at", "spend")

KEYS = Codec(
    kind=KEY, table="keys", record=KeyRecord, pk=("key_hash",),
    columns=(
        "key_hash", "key_name", "key_alias", "user_id", "team_id", "models", "max_budget",
        "budget_duration", "budget_reset_at", "spend", "expires_at", *_LIMITS, "metadata",
        "blocked", "aliases", "soft_budget", "enforced_params", "model_rpm_limit",
        "model_tpm_limit", "temp_budget_increase", "temp_budget_expiry", "extras",
        "created_at", "updated_at",
    ),
    json=("models", "metadata", "aliases", "enforced_params", "model_rpm_limit", "model_tpm_limit", "extras"),
    tuples=("models", "enforced_params"),
    times=("budget_reset_at", "expires_at", "temp_budget_expiry", "created_at", "updated_at"),
    bools=("blocked",),
)
USERS = Codec(
    kind=USER, table="users", record=UserRecord, pk=("user_id",),
    columns=(
        "user_id", "user_alias", "user_email", "user_role", "models", *_BUDGET, *_LIMITS,
        "metadata", "blocked", "extras", "created_at", "updated_at",
    ),
    json=("models", "metadata", "extras"), tuples=("models",),
    times=("budget_reset_at", "created_at", "updated_at"), bools=("blocked",),
)
TEAMS = Codec(
    kind=TEAM, table="teams", record=TeamRecord, pk=("team_id",),
    columns=(
        "team_id", "team_alias", "models", *_BUDGET, *_LIMITS, "metadata", "blocked",
        "model_aliases", "extras", "created_at", "updated_at",
    ),
    json=("models", "metadata", "model_aliases", "extras"), tuples=("models",),
    times=("budget_reset_at", "created_at", "updated_at"), bools=("blocked",),
)
MEMBERS = Codec(
    kind=MEMBER, table="team_members", record=MemberRecord, pk=("team_id", "user_id"),
    columns=(
        "team_id", "user_id", "role", "user_email", "max_budget_in_team", "spend",
        "budget_reset_at", "created_at",
    ),
    times=("budget_reset_at", "created_at"),
)
TIERS = Codec(
    kind=TIER, table="budget_tiers", record=BudgetTier, pk=("budget_id",),
    columns=(
        "budget_id", "max_budget", "soft_budget", "budget_duration", *_LIMITS, "extras",
        "created_at", "updated_at",
    ),
    json=("extras",), times=("created_at", "updated_at"),
)
END_USERS = Codec(
    kind=END_USER, table="end_users", record=EndUserRecord, pk=("user_id",),
    columns=(
        "user_id", "alias", "blocked", "budget_id", "spend", "budget_reset_at",
        "allowed_model_region", "default_model", "extras", "created_at", "updated_at",
    ),
    json=("extras",), times=("budget_reset_at", "created_at", "updated_at"), bools=("blocked",),
)

#: Deployments added at run time and run-time changes to config ones (records/model.py).
MODELS = Codec(
    kind=MODEL, table="models", record=ModelRecord, pk=("model_id",),
    columns=(
        "model_id", "model_name", "litellm_params", "model_info", "origin", "enabled",
        "created_at", "updated_at",
    ),
    json=("litellm_params", "model_info"), times=("created_at", "updated_at"), bools=("enabled",),
)

CODECS: Mapping[str, Codec] = {c.kind: c for c in (KEYS, USERS, TEAMS, MEMBERS, TIERS, END_USERS, MODELS)}
