"""Validate admin request bodies (keys, users, teams, end users, budgets) as LiteLLM takes them.

Each entity declares its fields once: `ACTIVE` fields the gateway acts on, each with a parser,
and `STORED` fields LiteLLM accepts that this gateway keeps and returns but does not act on yet
(listed in the README). A field LiteLLM does not know is refused when it carries a value (a
typo such as `max_budjet` must not pass silently) and ignored when empty.

Null: on create, a field sent as null takes its default. On update, null clears it (no limit,
no budget, every model), as LiteLLM's updates do; a null STORED field is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..config import parse_duration
from ..errors import BadRequest, ConfigError

MAX_TEXT = 256


@dataclass(frozen=True)
class Field:
    parse: Callable[[str, Any], Any]
    #: What an explicit null sets on update (the field's "unset" value).
    clear: Any = None


@dataclass
class Parsed:
    """A validated body: `fields` to set (cleared ones hold their clear value), `extras` to
    store (None: drop), and the raw body's special fields (`key`, `teams`...) in `special`."""

    fields: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    special: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


# -- parsers --------------------------------------------------------------------------------


def text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or not value.isprintable():
        raise BadRequest(f"`{name}` must be a non-empty string of at most {MAX_TEXT} printable characters.", param=name)
    return value.strip()


def count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"`{name}` must be a whole number >= 0.", param=name)
    return value


def usd(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadRequest(f"`{name}` must be a number of USD >= 0.", param=name)
    return float(value)


def names(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(m, str) and m for m in value):
        raise BadRequest(f"`{name}` must be a list of names.", param=name)
    return tuple(dict.fromkeys(value))


def models(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(m, str) and m for m in value):
        raise BadRequest(f"`{name}` must be a list of model names, wildcards or access groups ([] = every model).", param=name)
    return tuple(dict.fromkeys(value))


def duration(name: str, value: Any) -> str:
    try:
        parse_duration(value, name)
    except ConfigError as exc:
        raise BadRequest(str(exc), param=name) from None
    return str(value).strip()


def seconds(name: str, value: Any) -> int | None:
    """A key's lifetime (`duration`): seconds, or None for never (LiteLLM's "-1")."""
    if str(value).strip() == "-1":
        return None
    try:
        return parse_duration(value, name)
    except ConfigError as exc:
        raise BadRequest(str(exc), param=name) from None


def obj(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"`{name}` must be a JSON object.", param=name)
    return value


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"`{name}` must be true or false.", param=name)
    return value


def str_map(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()):
        raise BadRequest(f"`{name}` must map model names to model names.", param=name)
    return dict(value)


def int_map(name: str, value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in value.items()
    ):
        raise BadRequest(f"`{name}` must map model names to whole numbers >= 0.", param=name)
    return dict(value)


def moment(name: str, value: Any) -> float:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"`{name}` must be an ISO-8601 time.", param=name) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def one_of(*choices: str) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        if value not in choices:
            raise BadRequest(f"`{name}` must be one of {', '.join(choices)}.", param=name)
        return value

    return parse


def anything(name: str, value: Any) -> Any:
    return value


# -- field tables ---------------------------------------------------------------------------

LIMITS: dict[str, Field] = {n: Field(count) for n in ("rpm_limit", "tpm_limit", "max_parallel_requests")}
BUDGET: dict[str, Field] = {
    "max_budget": Field(usd), "soft_budget": Field(usd), "budget_duration": Field(duration),
}
#: Fields of LiteLLM's shared key/user request base that no level acts on here yet.
COMMON_STORED = (
    "agent_id", "allowed_cache_controls", "config", "permissions", "model_max_budget",
    "guardrails", "policies", "prompts", "object_permission", "budget_limits", "budget_fallbacks",
)

KEY_ACTIVE: dict[str, Field] = {
    "key_alias": Field(text), "user_id": Field(text), "team_id": Field(text),
    "models": Field(models, ()), **BUDGET, **LIMITS, "spend": Field(usd, 0.0),
    "duration": Field(seconds), "metadata": Field(obj, {}), "blocked": Field(flag, False),
    "aliases": Field(str_map, {}), "enforced_params": Field(names, ()),
    "model_rpm_limit": Field(int_map, {}), "model_tpm_limit": Field(int_map, {}),
    "temp_budget_increase": Field(usd), "temp_budget_expiry": Field(moment),
}
KEY_STORED = COMMON_STORED + (
    "budget_id", "tags", "allowed_routes", "allowed_passthrough_routes",
    "allowed_vector_store_indexes", "rpm_limit_type", "tpm_limit_type", "router_settings",
    "access_group_ids", "send_invite_email", "key_type", "auto_rotate", "rotation_interval",
    "organization_id", "project_id", "grace_period",
)
#: Handled by the endpoint itself (which key, the new secret on regenerate).
KEY_SPECIAL = ("key", "new_key", "new_master_key")

USER_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
USER_ACTIVE: dict[str, Field] = {
    "user_id": Field(text), "user_alias": Field(text), "user_email": Field(text),
    "user_role": Field(one_of(*USER_ROLES)), "models": Field(models, ()), **BUDGET, **LIMITS,
    "spend": Field(usd, 0.0), "metadata": Field(obj, {}), "blocked": Field(flag, False),
}
USER_STORED = COMMON_STORED + (
    "send_invite_email", "sso_user_id", "organizations", "model_rpm_limit", "model_tpm_limit",
    "tags", "budget_id", "enforced_params",
)
#: /user/new: the key it creates (auto_create_key), and the teams to join.
USER_SPECIAL = ("teams", "auto_create_key", "key_alias", "duration", "aliases", "team_id", "password")

TEAM_ACTIVE: dict[str, Field] = {
    "team_id": Field(text), "team_alias": Field(text), "models": Field(models, ()), **BUDGET,
    **LIMITS, "metadata": Field(obj, {}), "blocked": Field(flag, False),
    "model_aliases": Field(str_map, {}),
}
TEAM_STORED = (
    "organization_id", "team_member_permissions", "router_settings", "access_group_ids", "tags",
    "guardrails", "policies", "prompts", "object_permission", "allowed_passthrough_routes",
    "secret_manager_settings", "model_rpm_limit", "model_tpm_limit", "team_member_budget",
    "team_member_rpm_limit", "team_member_tpm_limit", "team_member_key_duration",
    "team_member_budget_duration", "allowed_vector_store_indexes",
    "enforced_batch_output_expires_after", "enforced_file_expires_after", "rpm_limit_type",
    "tpm_limit_type", "model_id",
)
TEAM_SPECIAL = ("members_with_roles", "admins", "members")

TIER_ACTIVE: dict[str, Field] = {"budget_id": Field(text), **BUDGET, **LIMITS}
TIER_STORED = ("model_max_budget", "budget_reset_at")

END_USER_ACTIVE: dict[str, Field] = {
    "user_id": Field(text), "alias": Field(text), "blocked": Field(flag, False),
    "budget_id": Field(text), "spend": Field(usd, 0.0),
    "allowed_model_region": Field(one_of("eu", "us")), "default_model": Field(text),
}
END_USER_STORED = ("object_permission", "metadata")
#: Budget fields on /end_user/new|update go to the end user's budget tier, as in LiteLLM.
END_USER_TIER = tuple(n for n in TIER_ACTIVE if n != "budget_id")


def parse(
    body: Any,
    active: Mapping[str, Field],
    stored: tuple[str, ...] = (),
    special: tuple[str, ...] = (),
    *,
    update: bool = False,
    what: str = "this endpoint",
) -> Parsed:
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    out = Parsed()
    for name, value in body.items():
        if name in special:
            out.special[name] = value
        elif name in active:
            if value is not None:
                out.fields[name] = active[name].parse(name, value)
            elif update:
                out.fields[name] = active[name].clear
        elif name in stored:
            if value is not None:
                out.extras[name] = value
            elif update:
                out.extras[name] = None
        elif value in (None, "", 0, False) or value == {} or value == []:
            continue
        else:
            raise BadRequest(f"`{name}` is not a field of {what}.", param=name)
    return out


def merge_extras(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**current, **changes}
    return {k: v for k, v in merged.items() if v is not None}
