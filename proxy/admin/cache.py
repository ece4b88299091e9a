"""Every key of keys.db, in memory: authenticating a known key is one dict lookup.

Invalidation: this process's own changes (/key/update, /key/delete) are applied here right after
they commit; changes made by another process (`python -m proxy keys ...`) are noticed through
SQLite's `PRAGMA data_version` and reloaded (service.py), within one sync interval. A key
unknown here is looked up in keys.db once (so a key created by the CLI works immediately) and
then remembered as missing until keys.db changes, so repeated bad keys cost no further reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .record import KeyRecord

#: Settings copied on update or reload; spend and its reset time are the gateway's own.
SETTINGS = (
    "key_alias", "user_id", "team_id", "models", "max_budget", "expires_at", "rpm_limit",
    "tpm_limit", "max_parallel_requests", "metadata", "blocked", "updated_at",
)
MAX_MISSING = 10_000


class KeyCache:
    def __init__(self) -> None:
        self._keys: dict[str, KeyRecord] = {}
        self._missing: set[str] = set()
        #: Bumped on every removal, so a lookup that raced a delete is not cached.
        self.epoch = 0

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[KeyRecord]:
        return iter(list(self._keys.values()))

    def get(self, key_hash: str) -> KeyRecord | None:
        return self._keys.get(key_hash)

    def known_missing(self, key_hash: str) -> bool:
        return key_hash in self._missing

    def mark_missing(self, key_hash: str) -> None:
        if len(self._missing) >= MAX_MISSING:
            self._missing.clear()  # bounded memory under a flood of random keys
        self._missing.add(key_hash)

    def put(self, rec: KeyRecord) -> KeyRecord:
        """Add `rec`, or fold its settings into the key already cached (keeping live spend)."""
        self._missing.discard(rec.key_hash)
        current = self._keys.get(rec.key_hash)
        if current is None:
            self._keys[rec.key_hash] = rec
            return rec
        apply_settings(current, rec)
        return current

    def remove(self, key_hash: str) -> KeyRecord | None:
        self.epoch += 1
        return self._keys.pop(key_hash, None)

    def reload(self, records: Iterable[KeyRecord]) -> tuple[int, list[str]]:
        """Make the cache match keys.db after another process changed it: (added, removed)."""
        fresh = {rec.key_hash: rec for rec in records}
        removed = [h for h in self._keys if h not in fresh]
        for key_hash in removed:
            del self._keys[key_hash]
        added = sum(1 for h in fresh if h not in self._keys)
        for rec in fresh.values():
            self.put(rec)
        self._missing.clear()
        self.epoch += 1
        return added, removed


def apply_settings(target: KeyRecord, source: KeyRecord) -> None:
    for name in SETTINGS:
        setattr(target, name, getattr(source, name))
    if target.budget_duration != source.budget_duration:
        target.budget_duration = source.budget_duration
        target.budget_reset_at = source.budget_reset_at
    target.refresh_principal()
