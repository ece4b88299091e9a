"""Every admin entity in memory: the request path (auth, admission) reads only this.

Invalidation: this process's own changes are applied here right after the store accepted them;
changes made by another process (`python -m proxy keys|users|teams ...`, another gateway) are
noticed through the store's change token and reloaded (service.py), within one sync interval.
A key unknown here is looked up in the store once (so a key created by the CLI works at once)
and then remembered as missing until the store changes, so repeated bad keys cost no reads.

Records are updated in place (`put` folds new settings into the cached object) so spend
charged by requests in flight is never lost; each key's Principal is rebuilt whenever the key,
its user or its team changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from ..server.auth import ModelMatcher
from .records import (
    END_USER,
    KEY,
    MEMBER,
    MODEL,
    TEAM,
    TIER,
    USER,
    EndUserRecord,
    KeyRecord,
    MemberRecord,
    TeamRecord,
    UserRecord,
)
from .records.base import member_ident

#: Not settings: the ledger's (spend, period) and links computed in memory.
_RUNTIME = frozenset({"spend", "budget_reset_at", "principal", "tier"})
MAX_MISSING = 10_000


def _settings(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in _RUNTIME)


class Registry:
    def __init__(self, matcher: ModelMatcher) -> None:
        self.matcher = matcher
        self.keys: dict[str, KeyRecord] = {}
        self.users: dict[str, UserRecord] = {}
        self.teams: dict[str, TeamRecord] = {}
        self.members: dict[str, MemberRecord] = {}
        self.end_users: dict[str, EndUserRecord] = {}
        self.tiers: dict[str, Any] = {}
        self.models: dict[str, Any] = {}  # run-time model changes (records/model.py)
        self._tables: dict[str, dict[str, Any]] = {
            KEY: self.keys, USER: self.users, TEAM: self.teams, MEMBER: self.members,
            END_USER: self.end_users, TIER: self.tiers, MODEL: self.models,
        }
        self._missing: set[str] = set()
        #: Regenerated keys: old hash -> new, so requests in flight on the old secret are charged.
        self._renamed: dict[str, str] = {}
        #: Bumped on every removal or reload, so a key lookup that raced one is not cached.
        self.epoch = 0

    # -- generic access -------------------------------------------------------------------
    def table(self, kind: str) -> dict[str, Any]:
        return self._tables[kind]

    def get(self, kind: str, ident: str) -> Any | None:
        return self._tables[kind].get(ident)

    def all(self, kind: str) -> list[Any]:
        return list(self._tables[kind].values())

    def put(self, rec: Any) -> Any:
        """Add `rec`, or fold its settings into the record already held (keeping its spend)."""
        table = self._tables[rec.KIND]
        current = table.get(rec.ident)
        if current is None:
            table[rec.ident] = current = rec
        else:
            fold(current, rec)
        if rec.KIND == KEY:
            self._missing.discard(rec.ident)
        self._relink(current)
        return current

    def remove(self, kind: str, ident: str) -> Any | None:
        self.epoch += 1
        rec = self._tables[kind].pop(ident, None)
        if rec is not None and kind in (USER, TEAM):
            self._refresh_keys(user_id=ident if kind == USER else None, team_id=ident if kind == TEAM else None)
        return rec

    def reload(self, records: dict[str, list[Any]]) -> tuple[int, list[tuple[str, str]]]:
        """Make memory match the store after another process changed it.
        Returns (keys added, [(kind, ident) removed])."""
        removed = []
        added = 0
        for kind in (TIER, TEAM, USER, MEMBER, END_USER, KEY, MODEL):
            fresh = {rec.ident: rec for rec in records.get(kind, [])}
            table = self._tables[kind]
            for ident in [i for i in table if i not in fresh]:
                del table[ident]
                removed.append((kind, ident))
            if kind == KEY:
                added = sum(1 for i in fresh if i not in table)
            for rec in fresh.values():
                table_rec = table.get(rec.ident)
                if table_rec is None:
                    table[rec.ident] = rec
                else:
                    fold(table_rec, rec)
        self._missing.clear()
        self.epoch += 1
        for rec in self.end_users.values():
            self._relink(rec)
        for rec in self.keys.values():
            self.refresh(rec)
        return added, removed

    # -- keys on the request path ---------------------------------------------------------
    def known_missing(self, key_hash: str) -> bool:
        return key_hash in self._missing

    def mark_missing(self, key_hash: str) -> None:
        if len(self._missing) >= MAX_MISSING:
            self._missing.clear()  # bounded memory under a flood of random keys
        self._missing.add(key_hash)

    def rename_key(self, old: str, new: str) -> None:
        if len(self._renamed) >= MAX_MISSING:
            self._renamed.clear()
        self._renamed[old] = new

    def charged_key(self, key_hash: str) -> KeyRecord | None:
        """The key a finished request is charged to (under its new hash if regenerated since)."""
        return self.keys.get(key_hash) or self.keys.get(self._renamed.get(key_hash, ""))

    def alias_hash(self, alias: str) -> str | None:
        return next((rec.key_hash for rec in self.keys.values() if rec.key_alias == alias), None)

    # -- relations ------------------------------------------------------------------------
    def keys_of(self, *, user_id: str | None = None, team_id: str | None = None) -> list[KeyRecord]:
        return [
            k for k in self.keys.values()
            if (user_id is None or k.user_id == user_id) and (team_id is None or k.team_id == team_id)
        ]

    def members_of(self, team_id: str) -> list[MemberRecord]:
        return sorted((m for m in self.members.values() if m.team_id == team_id), key=lambda m: m.created_at)

    def teams_of(self, user_id: str) -> list[str]:
        return [m.team_id for m in self.members.values() if m.user_id == user_id]

    def member(self, team_id: str | None, user_id: str | None) -> MemberRecord | None:
        if not team_id or not user_id:
            return None
        return self.members.get(member_ident(team_id, user_id))

    def refresh(self, key: KeyRecord) -> None:
        team = self.teams.get(key.team_id) if key.team_id else None
        user = self.users.get(key.user_id) if key.user_id else None
        key.refresh_principal(
            team_models=team.models if team else None,
            team_aliases=team.model_aliases if team else None,
            user_models=user.models if user else None,
            matcher=self.matcher,
        )

    def _relink(self, rec: Any) -> None:
        if rec.KIND == KEY:
            self.refresh(rec)
        elif rec.KIND in (USER, TEAM):
            self._refresh_keys(
                user_id=rec.ident if rec.KIND == USER else None,
                team_id=rec.ident if rec.KIND == TEAM else None,
            )
        elif rec.KIND == END_USER:
            rec.tier = self.tiers.get(rec.budget_id) if rec.budget_id else None
        elif rec.KIND == TIER:
            for end_user in self.end_users.values():
                if end_user.budget_id == rec.ident:
                    end_user.tier = rec

    def _refresh_keys(self, *, user_id: str | None, team_id: str | None) -> None:
        for key in self.keys.values():
            if (user_id and key.user_id == user_id) or (team_id and key.team_id == team_id):
                self.refresh(key)

    def __iter__(self) -> Iterator[KeyRecord]:
        return iter(list(self.keys.values()))


def fold(target: Any, source: Any) -> None:
    """Copy `source`'s settings into `target`; a changed budget period brings its reset time."""
    period_changed = getattr(target, "budget_duration", None) != getattr(source, "budget_duration", None)
    for name in _settings(type(target)):
        setattr(target, name, getattr(source, name))
    if not hasattr(target, "budget_reset_at"):
        return  # a budget tier: its end users keep their own periods
    if period_changed or (target.budget_reset_at is None and source.budget_reset_at is not None):
        target.budget_reset_at = source.budget_reset_at


def spend_records(registry: Registry) -> Iterable[Any]:
    """Every record with a spend counter, for adoption after a reload."""
    for kind in (KEY, USER, TEAM, MEMBER, END_USER):
        yield from registry.table(kind).values()
