"""Validate the settings of a key as /key/generate, /key/update and the CLI receive them.

LiteLLM's field names and semantics: a field sent as null is left unchanged. A LiteLLM field
this gateway does not implement is refused when it carries a value (silently ignoring
`model_max_budget` would let a user believe a budget is enforced), and ignored when empty
(LiteLLM's UI sends `"aliases": {}` and friends with every request).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..config import parse_duration
from ..errors import BadRequest, ConfigError
from ..server.auth import hash_key
from .budgets import next_reset
from .record import KEY_PREFIX, KeyRecord, display_name, new_raw_key

TEXT_FIELDS = ("key_alias", "user_id", "team_id")
LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_parallel_requests")
MONEY_FIELDS = ("max_budget", "spend")
KNOWN = frozenset(
    TEXT_FIELDS + LIMIT_FIELDS + MONEY_FIELDS
    + ("models", "budget_duration", "duration", "metadata", "blocked", "key")
)
MAX_TEXT = 256
MIN_CUSTOM_KEY = 16


def parse_key_fields(body: Any, *, update: bool = False) -> dict[str, Any]:
    """Request body → validated settings. `duration` becomes seconds; `key` (a custom raw key
    on generate, the key to change on update) is returned untouched for the caller."""
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name not in KNOWN:
            if value in (None, "", 0, False) or value == {} or value == []:
                continue
            raise BadRequest(f"`{name}` is not supported by this gateway.", param=name)
        if value is None:
            continue
        out[name] = _parse(name, value, update)
    return out


def _parse(name: str, value: Any, update: bool) -> Any:
    if name in TEXT_FIELDS:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            raise BadRequest(f"`{name}` must be a non-empty string of at most {MAX_TEXT} characters.", param=name)
        return value.strip()
    if name in LIMIT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequest(f"`{name}` must be a whole number >= 0.", param=name)
        return value
    if name in MONEY_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise BadRequest(f"`{name}` must be a number of USD >= 0.", param=name)
        return float(value)
    if name == "models":
        if not isinstance(value, list) or not all(isinstance(m, str) and m for m in value):
            raise BadRequest("`models` must be a list of model names ([] = every model).", param=name)
        return tuple(dict.fromkeys(value))
    if name in ("budget_duration", "duration"):
        try:
            seconds = parse_duration(value, name)
        except ConfigError as exc:
            raise BadRequest(str(exc), param=name) from None
        return str(value).strip() if name == "budget_duration" else seconds
    if name == "metadata":
        if not isinstance(value, dict):
            raise BadRequest("`metadata` must be a JSON object.", param=name)
        return value
    if name == "blocked":
        if not isinstance(value, bool):
            raise BadRequest("`blocked` must be true or false.", param=name)
        return value
    # name == "key"
    if not isinstance(value, str):
        raise BadRequest("`key` must be a string.", param="key")
    if not update and (not value.startswith(KEY_PREFIX) or len(value) < MIN_CUSTOM_KEY):
        raise BadRequest(
            f"A custom `key` must start with {KEY_PREFIX!r} and be at least {MIN_CUSTOM_KEY} characters.",
            param="key",
        )
    return value


def build_key(fields: dict[str, Any], now: float) -> tuple[str, KeyRecord]:
    """Validated /key/generate fields → (raw key, its record). The raw key leaves only here."""
    raw = fields.get("key") or new_raw_key()
    duration = fields.get("duration")
    rec = KeyRecord(
        key_hash=hash_key(raw),
        key_name=display_name(raw),
        key_alias=fields.get("key_alias"),
        user_id=fields.get("user_id"),
        team_id=fields.get("team_id"),
        models=fields.get("models", ()),
        max_budget=fields.get("max_budget"),
        budget_duration=fields.get("budget_duration"),
        budget_reset_at=next_reset(fields.get("budget_duration"), now),
        spend=fields.get("spend", 0.0),
        expires_at=now + duration if duration is not None else None,
        rpm_limit=fields.get("rpm_limit"),
        tpm_limit=fields.get("tpm_limit"),
        max_parallel_requests=fields.get("max_parallel_requests"),
        metadata=fields.get("metadata", {}),
        blocked=fields.get("blocked", False),
        created_at=now,
        updated_at=now,
    )
    return raw, rec


def updated_key(rec: KeyRecord, fields: dict[str, Any], now: float) -> KeyRecord:
    """A copy of `rec` with validated /key/update fields applied (the cached key is untouched
    until keys.db has accepted the change)."""
    new = dataclasses.replace(rec)
    for name, value in fields.items():
        if name == "key":
            continue
        if name == "duration":
            new.expires_at = now + value
        elif name == "budget_duration":
            if value != rec.budget_duration:
                new.budget_duration = value
                new.budget_reset_at = next_reset(value, now)
        else:
            setattr(new, name, value)
    new.updated_at = now
    new.refresh_principal()
    return new
