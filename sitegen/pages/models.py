"""The Models page: every deployment (config.yaml's and those added at run time), its price and
limits and whether it is switched on; per model its traffic over 1, 7 and 30 days and its last
error.

config.yaml is read partially: model_name, the litellm_params that say where and how (never
api_key, extra_headers or any other credential) and model_info. An `os.environ/NAME` value is
resolved from the report's environment where set, else shown as the variable's name; an
api_base is shown without userinfo or query. Deployment ids are computed as the gateway does
(never from a key), so the page names the same ids as /model/info.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from proxy.config import ENV_PREFIX, parse_config
from proxy.errors import ConfigError
from proxy.routing.ids import deployment_id
from proxy.routing.providers import public_api_base, resolve_provider
from proxy.settings import Deployment

from .. import views as v
from ..aggregates import model_stats
from ..catalogue import Column, TableDef, Window
from ..errors import Unavailable
from ..rolled.base import group, hour_bounds, last_hour, window
from .sources import keys_db, tables_of

if TYPE_CHECKING:
    from ..data import Reader

C = Column
#: litellm_params the page shows; every other key (api_key, extra_headers, cloud credentials)
#: is never read.
SHOWN = ("model", "api_base", "api_version", "timeout", "stream_timeout", "rpm", "tpm",
         "input_cost_per_token", "output_cost_per_token", "weight")
INFO_SHOWN = ("id", "mode", "base_model", "access_groups")
WINDOWS = (1, 7, 30)
MODELS_SQL = "SELECT model_id, model_name, litellm_params, model_info, origin, enabled FROM models"

#: The newest failure per model in the window: bare columns come from the MAX(timestamp) row.
LAST_ERROR = """
SELECT model, MAX(timestamp) AS last_error, status_code, {error_type} AS error_type,
       substr(response, 1, 300) AS message, COUNT(*) AS errors
FROM request_log WHERE timestamp >= :start AND timestamp < :end AND status_code >= 400
GROUP BY model ORDER BY last_error DESC
"""
#: One model's newest failure within one hour (the partial failed-requests index).
LAST_ERROR_IN_HOUR = """
SELECT timestamp AS last_error, status_code, {error_type} AS error_type,
       substr(response, 1, 300) AS message
FROM request_log WHERE timestamp >= :start AND timestamp < :end AND status_code >= 400
  AND model IS :model
ORDER BY timestamp DESC LIMIT 1
"""


def _clean(value: Any, env: dict[str, str]) -> Any:
    """A config value with `os.environ/NAME` resolved where the report's environment has it."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return env.get(value[len(ENV_PREFIX):], value)
    return value


def _entry(raw: dict[str, Any], env: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """A model_list entry reduced to what the page shows, and notes on values left unresolved."""
    params = raw.get("litellm_params") if isinstance(raw.get("litellm_params"), dict) else {}
    info = raw.get("model_info") if isinstance(raw.get("model_info"), dict) else {}
    moved = {k: raw[k] for k in ("rpm", "tpm") if k in raw}
    shown = {k: _clean(v, env) for k, v in {**moved, **params}.items() if k in SHOWN}
    unresolved = {k: v for k, v in shown.items() if isinstance(v, str) and v.startswith(ENV_PREFIX)}
    for key in unresolved:
        shown.pop(key)
    return ({"model_name": raw.get("model_name"), "litellm_params": shown,
             "model_info": {k: v for k, v in info.items() if k in INFO_SHOWN}},
            {k: v[len(ENV_PREFIX):] for k, v in unresolved.items()})


def read_config_models(path: Path | None) -> list[tuple[Deployment | None, dict[str, str], str]]:
    """(deployment or None, unresolved values, problem) per model_list entry of config.yaml."""
    if path is None or not Path(path).is_file():
        return []
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise Unavailable(f"{path}: cannot read its model_list ({exc}).".replace("\n", " ")) from None
    env = {**os.environ, **{k: str(v) for k, v in (raw.get("environment_variables") or {}).items()
                            if not str(v).startswith(ENV_PREFIX)}}
    found = []
    for item in raw.get("model_list") or []:
        if not isinstance(item, dict):
            continue
        entry, unresolved = _entry(item, env)
        found.append(_parse(entry, unresolved))
    return found


def _parse(entry: dict[str, Any], unresolved: dict[str, str]) -> tuple[Deployment | None, dict[str, str], str]:
    try:
        return parse_config({"model_list": [entry]}, env={}).models[0], unresolved, ""
    except ConfigError as exc:
        return None, unresolved, str(exc).replace("model_list[0].", "")


def _row(deployment: Deployment, ident: str, unresolved: dict[str, str], origin: str,
         enabled: bool) -> dict[str, object]:
    # Imported here, not at the top: genai-prices' price table and the router are a quarter of
    # a second of a build's start-up, which a log without configured models skips.
    from proxy.accounting.pricing import CONFIG, PRICED, resolve_price
    from proxy.routing.info import per_token

    params = deployment.litellm_params
    try:
        provider = resolve_provider(deployment)
        provider_name, api_base, problem = provider.name, public_api_base(provider.api_base), ""
    except ConfigError as exc:
        provider_name, api_base, problem = params.model.partition("/")[0], None, str(exc)
    if "api_base" in unresolved:
        api_base = f"${unresolved['api_base']} (set where the gateway runs)"
    price = resolve_price(deployment)
    input_cost, output_cost = per_token(price)
    source = {CONFIG: "config.yaml", PRICED: f"genai-prices ({price.matched})" if price.matched else "genai-prices"}
    limits = [f"{name} {value:g}" for name, value in (("rpm", params.rpm), ("tpm", params.tpm),
              ("timeout", params.timeout), ("weight", params.weight)) if value is not None]
    return {
        "model": deployment.model_name, "deployment_id": ident, "provider": provider_name,
        "api_base": api_base, "upstream_model": params.model,
        "input_per_million": None if input_cost is None else round(input_cost * 1e6, 6),
        "output_per_million": None if output_cost is None else round(output_cost * 1e6, 6),
        "price_source": source.get(price.status, "no price: logged as $0"),
        "limits": " · ".join(limits) or None, "state": "enabled" if enabled else "disabled",
        "origin": origin, "problem": problem or None,
    }


def deployment_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    configured = read_config_models(reader.sources.config)
    seen: dict[str, int] = {}
    rows: dict[str, dict[str, object]] = {}
    raw_by_id: dict[str, tuple[Deployment, dict[str, str]]] = {}
    for deployment, unresolved, problem in configured:
        if deployment is None:
            key = f"invalid-{len(rows)}"
            rows[key] = {"model": "(invalid entry)", "origin": "config.yaml", "problem": problem, "state": "—"}
            continue
        ident = deployment_id(deployment, seen)
        raw_by_id[ident] = (deployment, unresolved)
        rows[ident] = _row(deployment, ident, unresolved, "config.yaml", True)
    stored = _stored_models(reader)
    for rec in stored:
        ident = rec["model_id"]
        params = {k: v for k, v in json.loads(rec["litellm_params"] or "{}").items() if k in SHOWN}
        info = {k: v for k, v in json.loads(rec["model_info"] or "{}").items() if k in INFO_SHOWN}
        if rec["origin"] == "api":
            entry = {"model_name": rec["model_name"], "litellm_params": params, "model_info": {**info, "id": ident}}
            deployment, _, problem = _parse(*_entry(entry, dict(os.environ)))
            if deployment is None:
                rows[ident] = {"model": rec["model_name"], "deployment_id": ident, "problem": problem,
                               "origin": "added at run time", "state": "not applied"}
                continue
            rows[ident] = _row(deployment, ident, {}, "added at run time", bool(rec["enabled"]))
        elif ident in raw_by_id:
            base, unresolved = raw_by_id[ident]
            if params or info or rec["model_name"]:
                entry, _ = _entry({"model_name": rec["model_name"] or base.model_name,
                                   "litellm_params": {**_shown_params(base), **params},
                                   "model_info": info}, dict(os.environ))
                changed, _, problem = _parse(entry, unresolved)
                base = changed or base
            rows[ident] = _row(base, ident, unresolved, "config.yaml, changed at run time", bool(rec["enabled"]))
    if not rows:
        raise Unavailable("No models to list: no config.yaml was read (pass --config) and keys.db "
                          "holds no models added at run time. Traffic by model is below.")
    return sorted(rows.values(), key=lambda r: (str(r.get("model")), str(r.get("deployment_id"))))


def _shown_params(deployment: Deployment) -> dict[str, Any]:
    params = deployment.litellm_params
    return {k: getattr(params, k) for k in SHOWN if getattr(params, k) is not None}


def _stored_models(reader: Reader) -> list[Any]:
    try:
        with keys_db(reader.sources.keys_db) as conn:
            return conn.execute(MODELS_SQL).fetchall() if "models" in tables_of(conn) else []
    except Unavailable:
        return []


def stats_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Per model and window: requests, tokens, cost, error rate, latency and TTFT p50/p95 — from
    the report's aggregates (rollups and its cache: whole hours, the edges from raw rows), so
    the page costs the same at any size of log; exact percentiles on a log without rollups."""
    rows = []
    for days in WINDOWS:
        label = f"{days} day{'s' if days > 1 else ''}"
        for r in model_stats(reader, days):
            rows.append({
                "model": r["model"], "window": label, "requests": r["requests"], "tokens": r["tokens"],
                "cost": r["cost"], "error_rate": r["error_rate"],
                **{k: _round(r[k]) for k in ("p50", "p95", "ttft_p50", "ttft_p95")},  # type: ignore[arg-type]
            })
    order = {f"{d} day{'s' if d > 1 else ''}": i for i, d in enumerate(WINDOWS)}
    return sorted(rows, key=lambda r: (str(r["model"]), order[str(r["window"])]))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def last_error_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    error_type = "error_type" if "error_type" in reader.columns else "NULL"
    if reader.aggregates.cache is None:
        rows = reader.query(LAST_ERROR.format(error_type=error_type), bounds)
    else:
        rows = _last_errors_from_hours(reader, bounds, error_type)
    for r in rows:
        r["last_error"] = str(r["last_error"])[:19]
    return rows


def _last_errors_from_hours(reader: Reader, bounds: dict[str, str],
                            error_type: str) -> list[dict[str, object]]:
    """LAST_ERROR's rows without reading 30 days of failures: the errors per model and hour
    come from the aggregates, then each model's newest failure from its last hour with one."""
    start, end = window(bounds)
    hourly = reader.aggregates.counters(v.MODEL, start, end, "hour")
    last = last_hour(hourly, ("model",), "errors")
    rows = []
    for (model,), r in group(hourly, ("model",), ("errors",)).items():
        if (model,) not in last:
            continue
        found = reader.query(LAST_ERROR_IN_HOUR.format(error_type=error_type), {
            **hour_bounds(reader, last[(model,)], start, end), "model": model})
        if found:
            rows.append({**found[0], "model": model, "errors": r["errors"]})
    return sorted(rows, key=lambda r: str(r["last_error"]), reverse=True)


WINDOW = Window("rolling", 30)
TABLES = (
    TableDef("model_deployments", "Models and deployments", "", (
        C("model", "Model"), C("deployment_id", "Deployment id"), C("provider", "Provider"),
        C("api_base", "API base", "label"), C("upstream_model", "Upstream model"),
        C("input_per_million", "Input $ / 1M tokens", "num"),
        C("output_per_million", "Output $ / 1M tokens", "num"), C("price_source", "Price from"),
        C("limits", "Limits", "label"), C("state", "State"), C("origin", "Defined in"),
        C("problem", "Problem", "label"),
    ), Window("built"), "From config.yaml (never its api_key or other credentials) and the "
       "deployments added or changed at run time (keys.db). API bases are shown without "
       "credentials or query. State as keys.db held it when the report was built.",
        compute=deployment_rows, show_rows=200),
    TableDef("model_stats", "Traffic by model: 1, 7 and 30 days", "", (
        C("model", "Model"), C("window", "Window"), C("requests", "Requests", "int"),
        C("tokens", "Tokens", "int"), C("cost", "Cost", "usd"), C("error_rate", "Error rate", "pct"),
        C("p50", "Latency p50", "sec"), C("p95", "Latency p95", "sec"),
        C("ttft_p50", "First token p50", "sec"), C("ttft_p95", "First token p95", "sec"),
    ), WINDOW, "Latency and first-token percentiles count the requests that reached an upstream "
       "(nearest rank). Whole hours come from the hourly rollups and the report's cache when the "
       "log has them (percentiles then within 10 %, one histogram bucket), the edges of each "
       "window from the rows themselves.",
        compute=stats_rows, show_rows=150),
    TableDef("model_last_errors", "Last error by model", "", (
        C("model", "Model"), C("last_error", "Last error (UTC)", "ts"), C("status_code", "Status", "code"),
        C("error_type", "Error type", "label"), C("message", "Message (first 300 characters)"),
        C("errors", "Errors, 30 days", "int"),
    ), WINDOW, compute=last_error_rows, empty="No failed requests in the last 30 days."),
)
