"""Validated request fields → new records, or updated copies of records.

Updates work on a copy: the cached record is changed only after the store has accepted the new
settings (the registry then folds them in, keeping the spend charged meanwhile).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from ..errors import BadRequest
from ..server.auth import hash_key
from .budgets import next_reset
from .fields import Parsed, merge_extras
from .records import KeyRecord
from .records.key import KEY_PREFIX, display_name, new_raw_key

MIN_CUSTOM_KEY = 16
#: Fields that are not attributes of a record of the same name.
_KEY_ONLY = ("duration",)


def custom_key(value: Any, param: str = "key") -> str:
    if not isinstance(value, str) or not value.startswith(KEY_PREFIX) or len(value) < MIN_CUSTOM_KEY:
        raise BadRequest(
            f"A custom `{param}` must start with {KEY_PREFIX!r} and be at least {MIN_CUSTOM_KEY} characters.",
            param=param,
        )
    return value


def create(cls: type, parsed: Parsed, now: float, **given: Any) -> Any:
    """A new record of `cls` from validated fields (and `given` ones, e.g. its id)."""
    values = {k: v for k, v in parsed.fields.items() if k not in _KEY_ONLY}
    values.update(given)
    names = {f.name for f in dataclasses.fields(cls)}
    values["created_at"] = now
    if "updated_at" in names:
        values["updated_at"] = now
    if "extras" in names:
        values["extras"] = merge_extras({}, parsed.extras)
    rec = cls(**values)
    if hasattr(rec, "budget_reset_at") and getattr(rec, "budget_duration", None):
        rec.budget_reset_at = next_reset(rec.budget_duration, now)
    return rec


def updated(rec: Any, parsed: Parsed, now: float) -> Any:
    """A copy of `rec` with validated update fields applied."""
    new = copy.copy(rec)
    for name, value in parsed.fields.items():
        if name in _KEY_ONLY:
            continue
        if name == "budget_duration" and hasattr(new, "budget_reset_at"):
            if value != rec.budget_duration:
                new.budget_duration = value
                new.budget_reset_at = next_reset(value, now)
        else:
            setattr(new, name, value)
    if parsed.extras:
        new.extras = merge_extras(rec.extras, parsed.extras)
    if hasattr(new, "updated_at"):
        new.updated_at = now
    return new


def build_key(parsed: Parsed, now: float, raw: str | None = None) -> tuple[str, KeyRecord]:
    """Validated /key/generate fields → (raw key, its record). The raw key leaves only here."""
    raw = raw or new_raw_key()
    lifetime = parsed.get("duration")
    rec = create(
        KeyRecord, parsed, now,
        key_hash=hash_key(raw), key_name=display_name(raw),
        expires_at=now + lifetime if lifetime is not None else None,
    )
    rec.refresh_principal()
    return raw, rec


def updated_key(rec: KeyRecord, parsed: Parsed, now: float) -> KeyRecord:
    new = updated(rec, parsed, now)
    if "duration" in parsed.fields:
        lifetime = parsed.fields["duration"]
        new.expires_at = now + lifetime if lifetime is not None else None
    return new


def regenerated_key(rec: KeyRecord, raw: str, now: float) -> KeyRecord:
    """The same key (settings, spend, period) under a new secret."""
    new = copy.copy(rec)
    new.key_hash = hash_key(raw)
    new.key_name = display_name(raw)
    new.updated_at = now
    return new
