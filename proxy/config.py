"""Read config.yaml (LiteLLM's proxy format, the subset in DESIGN.md) into `settings.Config`.

Rules: `os.environ/NAME` works for any value the gateway reads (an unset one inside a key it
ignores only warns); unknown keys warn once and are ignored; a value of the wrong type stops
start-up with ConfigError naming the key (e.g. `model_list[1].litellm_params.timeout`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
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
    LitellmParams,
    LitellmSettings,
    ModelInfo,
    ReportSettings,
    RouterSettings,
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
    the key, only if something read actually refers to it.

    `os.environ/NAME` is resolved only inside keys the gateway reads: LiteLLM configs carry
    settings for features we do not have (langfuse keys, redis for its router, ...), and an
    unset variable there is worth a warning, never a refusal to start.
    """
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
    reader = _Reader({**base_env, **environment})

    for key, value in raw.items():
        if key not in TOP_LEVEL:
            reader.ignore(value, key, f"config: unknown key {key!r} ignored")

    models = tuple(
        reader.build(Deployment, _deployment_shape(item, f"model_list[{i}]"), f"model_list[{i}]")
        for i, item in enumerate(raw.get("model_list") or [])
    )
    for i, deployment in enumerate(models):
        if not deployment.model_name:
            raise ConfigError(f"model_list[{i}].model_name: required")
        if not deployment.litellm_params.model:
            raise ConfigError(f"model_list[{i}].litellm_params.model: required")
        timeout = deployment.litellm_params.timeout
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"model_list[{i}].litellm_params.timeout: must be > 0, got {timeout}")

    general = reader.build(GeneralSettings, raw.get("general_settings") or {}, "general_settings")
    lookup = reader.lookup
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
    for name in ("health_check_interval", "health_check_timeout"):
        if getattr(general, name) <= 0:
            raise ConfigError(f"general_settings.{name}: must be > 0")
    for key in ("shutdown_grace", "request_log_spill_after"):
        if getattr(general, key) < 0:
            raise ConfigError(f"general_settings.{key}: must be >= 0 seconds")
    if general.request_log_max_backlog < 1:
        raise ConfigError("general_settings.request_log_max_backlog: must be at least 1")
    general = _body_limit(general, raw.get("general_settings") or {})
    if general.metrics_label_values < 1:
        raise ConfigError("general_settings.metrics_label_values: must be at least 1")

    litellm = reader.build(LitellmSettings, raw.get("litellm_settings") or {}, "litellm_settings")
    if litellm.budget_duration is not None:
        parse_duration(litellm.budget_duration, "litellm_settings.budget_duration")
    if litellm.max_budget is not None and litellm.max_budget < 0:
        raise ConfigError("litellm_settings.max_budget: must be >= 0")

    router = _router_settings(
        reader.build(RouterSettings, raw.get("router_settings") or {}, "router_settings"), litellm
    )
    report = reader.build(ReportSettings, raw.get("report") or {}, "report")
    _check_breakdowns(report.breakdowns)
    if report.logs_rows < 1:
        raise ConfigError("report.logs_rows: must be at least 1")
    # Every alert rule is read (by sitegen), so the whole section resolves.
    alerts = _mapping(_resolve(raw.get("alerts") or {}, lookup, "alerts"), "alerts")
    return Config(
        models=models,
        general=general,
        litellm=litellm,
        router=router,
        report=report,
        alerts=dict(alerts),
        environment=environment,
        source=source,
    )


def _deployment_shape(item: Any, key: str) -> dict[str, Any]:
    """LiteLLM also takes rpm/tpm beside litellm_params (its load-balancing examples do)."""
    item = dict(_mapping(item, key))
    moved = {k: item.pop(k) for k in ("rpm", "tpm") if k in item}
    if moved:
        params = dict(_mapping(item.get("litellm_params") or {}, f"{key}.litellm_params"))
        item["litellm_params"] = {**moved, **params}
    return item


def _router_settings(router: RouterSettings, litellm: LitellmSettings) -> RouterSettings:
    """router_settings, with litellm_settings' copies of the same keys as defaults."""
    if router.num_retries is not None and router.num_retries < 0:
        raise ConfigError("router_settings.num_retries: must be >= 0")
    if litellm.num_retries is not None and litellm.num_retries < 0:
        raise ConfigError("litellm_settings.num_retries: must be >= 0")
    if router.allowed_fails < 0:
        raise ConfigError("router_settings.allowed_fails: must be >= 0")
    if router.cooldown_time < 0:
        raise ConfigError("router_settings.cooldown_time: must be >= 0")
    if router.timeout is not None and router.timeout <= 0:
        raise ConfigError("router_settings.timeout: must be > 0")
    lists = {}
    for name in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        merged = {
            **parse_fallbacks(getattr(litellm, name), f"litellm_settings.{name}"),
            **parse_fallbacks(getattr(router, name), f"router_settings.{name}"),
        }
        lists[name] = [{model: list(chain)} for model, chain in merged.items()]
    return dataclasses.replace(
        router,
        num_retries=router.num_retries if router.num_retries is not None else litellm.num_retries,
        model_group_alias=parse_aliases(router.model_group_alias),
        **lists,
    )


def parse_fallbacks(value: Any, key: str) -> dict[str, tuple[str, ...]]:
    """LiteLLM's `[{"model": ["fallback", ...]}, ...]` (a plain mapping works too)."""
    items = [value] if isinstance(value, dict) else value or []
    found: dict[str, tuple[str, ...]] = {}
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected {{model: [fallback models]}}, got {item!r}")
        for model, chain in item.items():
            chain = [chain] if isinstance(chain, str) else chain
            if not isinstance(chain, list) or not all(isinstance(m, str) and m for m in chain):
                raise ConfigError(f"{where}.{model}: expected a list of model names, got {chain!r}")
            found[str(model)] = tuple(chain)
    return found


def parse_aliases(value: dict[str, Any]) -> dict[str, Any]:
    """model_group_alias entries as {"model": name, "hidden": bool}."""
    aliases: dict[str, Any] = {}
    for alias, target in value.items():
        key = f"router_settings.model_group_alias.{alias}"
        if isinstance(target, str) and target:
            aliases[str(alias)] = {"model": target, "hidden": False}
        elif isinstance(target, dict) and isinstance(target.get("model"), str) and target["model"]:
            aliases[str(alias)] = {"model": target["model"], "hidden": bool(target.get("hidden", False))}
        else:
            raise ConfigError(f"{key}: expected a model name or {{model, hidden}}, got {target!r}")
    return aliases


def _body_limit(general: GeneralSettings, given: Mapping[str, Any]) -> GeneralSettings:
    """max_request_body_mb, else LiteLLM's max_request_size_mb, else the bytes of
    max_request_bytes (our name until 0.1, deprecated)."""
    if general.max_request_bytes is not None:
        log.warning("config: general_settings.max_request_bytes is deprecated; "
                    "use max_request_body_mb (MiB)")
    if "max_request_body_mb" not in given:
        if general.max_request_size_mb is not None:
            general = dataclasses.replace(general, max_request_body_mb=general.max_request_size_mb)
        elif general.max_request_bytes is not None:
            general = dataclasses.replace(
                general, max_request_body_mb=general.max_request_bytes / (1024 * 1024)
            )
    if general.max_request_body_mb <= 0:
        raise ConfigError("general_settings.max_request_body_mb: must be > 0")
    return general


#: A metadata key the report can name in a JSON path and a file name: no quotes, no slashes.
BREAKDOWN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def _check_breakdowns(keys: list[str]) -> None:
    for i, key in enumerate(keys):
        if not BREAKDOWN_KEY.fullmatch(key):
            raise ConfigError(f"report.breakdowns[{i}]: {key!r} is not a metadata key (letters, "
                              "digits, _ . - up to 64 characters)")
        if key in keys[:i]:
            raise ConfigError(f"report.breakdowns[{i}]: {key!r} is listed twice")


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

#: litellm_params that LiteLLM sends with every call as request parameters (the client's own
#: values win); other unknown litellm_params are provider options we do not have.
REQUEST_PARAMS = frozenset({
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "n",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "response_format", "reasoning_effort", "parallel_tool_calls", "service_tier", "user",
    "dimensions", "encoding_format",
})


class _Reader:
    """Builds settings dataclasses, resolving `os.environ/` only where a value is read."""

    def __init__(self, lookup: Mapping[str, str]) -> None:
        self.lookup = lookup
        self._warned: set[str] = set()

    def warn_once(self, topic: str, message: str, *args: Any) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            log.warning(message, *args)

    def ignore(self, value: Any, key: str, message: str) -> None:
        """A key the gateway does not use: say so once, and name unset variables inside it."""
        self.warn_once(_pattern(key), "%s", message)
        for name in _env_names(value):
            if name not in self.lookup:
                self.warn_once(
                    f"env:{name}", "config: environment variable %s (in %s, which this gateway "
                    "ignores) is not set; fine, nothing reads it", name, key,
                )

    def build(self, cls: type, raw: Any, key: str) -> Any:
        raw = _mapping(raw, key)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        extra_field = next((f.name for f in fields.values() if f.metadata.get("extra")), None)
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in raw.items():
            where = f"{key}.{name}"
            if name not in fields or name == extra_field:
                if cls is LitellmParams and name in REQUEST_PARAMS:
                    extra[name] = _resolve(value, self.lookup, where)
                elif cls is ModelInfo:
                    extra[name] = value  # free-form, shown by /model/info, never resolved
                else:
                    self.ignore(value, where, f"config: unknown key {_pattern(where)} ignored")
                continue
            hint = hints[name]
            if dataclasses.is_dataclass(_unoptional(hint)):
                values[name] = self.build(_unoptional(hint), value if value is not None else {}, where)
            else:
                values[name] = _coerce(_resolve(value, self.lookup, where), hint, where)
        if extra_field is not None:
            values[extra_field] = extra
        return cls(**values)


def _pattern(key: str) -> str:
    """model_list[3].litellm_params.x -> model_list[].litellm_params.x: one warning for all."""
    return re.sub(r"\[\d+\]", "[]", key)


def _env_names(value: Any) -> list[str]:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return [value[len(ENV_PREFIX):]]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _env_names(v)]
    if isinstance(value, list):
        return [n for v in value for n in _env_names(v)]
    return []


def _unoptional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


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


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
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
