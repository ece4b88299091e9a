"""Read config.yaml (LiteLLM's proxy format, the subset in DESIGN.md) into `settings.Config`.

Rules: `os.environ/NAME` works for any value; unknown keys warn and are ignored; a value of the
wrong type stops start-up with ConfigError naming the key (e.g. `model_list[1].litellm_params.timeout`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .settings import (
    Config,
    Deployment,
    GeneralSettings,
    LitellmSettings,
    ReportSettings,
)

log = logging.getLogger("proxy.config")

ENV_PREFIX = "os.environ/"
BUDGET_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TOP_LEVEL = {
    "model_list",
    "general_settings",
    "litellm_settings",
    "environment_variables",
    "report",
    "alerts",
    "router_settings",
}


DEFAULT_CONFIG = Path("config.yaml")


def config_path(given: str | Path | None) -> Path | None:
    """The config a command reads: the one given, else ./config.yaml when present. The default
    name is optional even when given (`make backup` always passes it); any other must exist."""
    if given is None or Path(given) == DEFAULT_CONFIG:
        return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None
    return Path(given)


#: Which sections (and, optionally, which keys of them) a partial read keeps.
Sections = Mapping[str, Collection[str] | None]


def load_config(
    path: str | Path | None,
    *,
    env: Mapping[str, str] | None = None,
    only: Sections | None = None,
) -> Config:
    """Load and validate; a missing path gives the defaults (an open gateway with no models).

    `only` reads just those sections (a collection of key names limits a section to them):
    the report, alerts, backups and the keys CLI run from cron without the providers' API
    keys, so the model list and its `os.environ/` references must stay unread there.
    """
    if path is None:
        return Config()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    if only is not None:
        raw = _subset(raw, only)
    return parse_config(raw, env=env, source=str(path), strict_environment=only is None)


def _subset(raw: dict[str, Any], only: Sections) -> dict[str, Any]:
    subset: dict[str, Any] = {}
    for section, keys in only.items():
        value = raw.get(section)
        if value is None:
            continue
        if keys is not None and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in keys}
        subset[section] = value
    if "environment_variables" in raw:
        subset["environment_variables"] = raw["environment_variables"]
    return subset


def parse_config(
    raw: dict[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    source: str | None = None,
    strict_environment: bool = True,
) -> Config:
    """Validate a config mapping. With strict_environment off (partial reads), an
    environment_variables entry naming an unset variable is dropped: it fails later, naming
    the key, only if something read actually refers to it."""
    base_env = dict(os.environ if env is None else env)
    declared = _mapping(raw.get("environment_variables") or {}, "environment_variables")
    environment: dict[str, str] = {}
    for name, value in declared.items():
        # environment_variables may itself use os.environ/ for indirection.
        try:
            environment[name] = str(_resolve(value, base_env, f"environment_variables.{name}"))
        except ConfigError:
            if strict_environment:
                raise
    lookup = {**base_env, **environment}
    # environment_variables was resolved above, entry by entry.
    resolved = {"environment_variables": environment} | _resolve(
        {k: v for k, v in raw.items() if k != "environment_variables"}, lookup, ""
    )

    for key in resolved:
        if key not in TOP_LEVEL:
            log.warning("config: unknown key %r ignored", key)

    models = tuple(
        _build(Deployment, item, f"model_list[{i}]")
        for i, item in enumerate(resolved.get("model_list") or [])
    )
    for i, deployment in enumerate(models):
        if not deployment.model_name:
            raise ConfigError(f"model_list[{i}].model_name: required")
        if not deployment.litellm_params.model:
            raise ConfigError(f"model_list[{i}].litellm_params.model: required")
        timeout = deployment.litellm_params.timeout
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"model_list[{i}].litellm_params.timeout: must be > 0, got {timeout}")

    general = _build(GeneralSettings, resolved.get("general_settings") or {}, "general_settings")
    # LiteLLM reads the UI credentials from the environment when the config has none.
    general = dataclasses.replace(
        general,
        ui_username=general.ui_username or lookup.get("UI_USERNAME") or None,
        ui_password=general.ui_password or lookup.get("UI_PASSWORD") or None,
    )
    if general.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"general_settings.log_level: unknown level {general.log_level!r}")
    if general.max_stored_chars < 0:
        raise ConfigError("general_settings.max_stored_chars: must be >= 0")

    litellm = _build(LitellmSettings, resolved.get("litellm_settings") or {}, "litellm_settings")
    if litellm.budget_duration is not None:
        parse_duration(litellm.budget_duration, "litellm_settings.budget_duration")
    if litellm.max_budget is not None and litellm.max_budget < 0:
        raise ConfigError("litellm_settings.max_budget: must be >= 0")

    report = _build(ReportSettings, resolved.get("report") or {}, "report")
    alerts = _mapping(resolved.get("alerts") or {}, "alerts")
    return Config(
        models=models,
        general=general,
        litellm=litellm,
        report=report,
        alerts=dict(alerts),
        environment=environment,
        source=source,
    )


def parse_duration(value: str, key: str = "duration") -> int:
    """'30s', '5m', '1h', '7d' → seconds (LiteLLM's budget_duration and key duration format)."""
    text = str(value).strip().lower()
    if text.endswith("mo"):
        text = f"{int(text[:-2]) * 30}d" if text[:-2].isdigit() else text
    unit = text[-1:]
    number = text[:-1]
    if unit not in BUDGET_UNITS or not number.isdigit() or int(number) <= 0:
        raise ConfigError(f"{key}: expected a duration like 30s, 1h, 1d, 30d; got {value!r}")
    return int(number) * BUDGET_UNITS[unit]


# -- helpers -------------------------------------------------------------------------------


def _resolve(value: Any, lookup: Mapping[str, str], key: str) -> Any:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if name not in lookup:
            raise ConfigError(f"{key or 'config'}: environment variable {name} is not set")
        return lookup[name]
    if isinstance(value, dict):
        return {k: _resolve(v, lookup, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, lookup, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    return value


def _build(cls: type, raw: Any, key: str) -> Any:
    raw = _mapping(raw, key)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for name, value in raw.items():
        if name not in known:
            log.warning("config: unknown key %s.%s ignored", key, name)
            continue
        values[name] = _coerce(value, hints[name], f"{key}.{name}")
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, key)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if hint is int:
            if number != int(number):
                raise ConfigError(f"{key}: expected a whole number, got {value!r}")
            return int(number)
        return number
    if hint is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{key}: expected text, got {type(value).__name__}")
        return str(value)
    if origin is list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        return {str(k): v for k, v in _mapping(value or {}, key).items()}
    return value
