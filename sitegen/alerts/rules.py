"""The `alerts:` section of config.yaml, validated, and the rules it names (the guide's monitor.sh
checks, as configuration). Every rule reads only the guide's columns, so it also works on a log
written by an older gateway. SQL is read-only, with :named parameters.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.config import parse_duration
from proxy.errors import ConfigError
from proxy.logdb.record import utc_timestamp

from ..queries import LATENCY_POPULATION, REACHED_UPSTREAM

log = logging.getLogger("sitegen.alerts")

ERRORS_SINCE_SQL = """
SELECT COUNT(*) FROM request_log WHERE timestamp > :since AND status_code >= 400
"""
ERROR_RATE_SQL = """
SELECT COUNT(*) AS requests, COALESCE(SUM(status_code >= 400), 0) AS errors
FROM request_log WHERE timestamp > :since
"""
COST_SINCE_SQL = """
SELECT COALESCE(SUM(cost), 0) FROM request_log WHERE timestamp >= :since
"""
# Nearest-rank p95 per model: the smallest latency whose rank reaches 95 % of the model's count,
# over the requests that reached an upstream (the report's definition: sitegen/queries.py).
MODEL_P95_SQL = f"""
WITH ranked AS (
    SELECT model, latency,
           ROW_NUMBER() OVER (PARTITION BY model ORDER BY latency) AS rank,
           COUNT(*) OVER (PARTITION BY model) AS requests
    FROM {LATENCY_POPULATION} WHERE timestamp > :since AND {REACHED_UPSTREAM}
)
SELECT model, requests, MIN(latency) AS p95
FROM ranked WHERE rank * 100 >= requests * 95 AND requests >= :min_requests
GROUP BY model ORDER BY model
"""


@dataclass(frozen=True)
class Rule:
    name: str
    type: str
    threshold: float
    lookback: int  # seconds
    min_requests: int
    repeat: int  # seconds between notifications of an alert that stays active


@dataclass(frozen=True)
class Finding:
    """One active condition. `ident` tells instances of a rule apart (one per model for p95)."""

    ident: str
    rule: str
    message: str
    value: float | None


@dataclass
class Context:
    conn: sqlite3.Connection | None
    now: float
    gateway_url: str | None
    fetch: Callable[[str], tuple[int, bytes]]


@dataclass(frozen=True)
class RuleType:
    needs_threshold: bool
    needs_db: bool
    default_lookback: str | None
    check: Callable[[Rule, Context], list[Finding]]
    help: str


def _errors(rule: Rule, ctx: Context) -> list[Finding]:
    assert ctx.conn is not None
    (count,) = ctx.conn.execute(ERRORS_SINCE_SQL, {"since": _since(ctx, rule.lookback)}).fetchone()
    if count <= rule.threshold:
        return []
    return [Finding(rule.name, rule.name,
                    f"{count:,} failed requests in the last {_span(rule.lookback)} "
                    f"(threshold {rule.threshold:g})", float(count))]


def _error_rate(rule: Rule, ctx: Context) -> list[Finding]:
    assert ctx.conn is not None
    row = ctx.conn.execute(ERROR_RATE_SQL, {"since": _since(ctx, rule.lookback)}).fetchone()
    requests, errors = int(row[0]), int(row[1])
    if requests < rule.min_requests or requests == 0:
        return []
    rate = 100.0 * errors / requests
    if rate <= rule.threshold:
        return []
    return [Finding(rule.name, rule.name,
                    f"error rate {rate:.1f}% ({errors:,} of {requests:,} requests) in the last "
                    f"{_span(rule.lookback)} (threshold {rule.threshold:g}%)", round(rate, 2))]


def _daily_cost(rule: Rule, ctx: Context) -> list[Finding]:
    assert ctx.conn is not None
    midnight = ctx.now - ctx.now % 86400  # today, UTC, as the guide's DATE('now')
    (cost,) = ctx.conn.execute(COST_SINCE_SQL, {"since": utc_timestamp(midnight)}).fetchone()
    if cost <= rule.threshold:
        return []
    return [Finding(rule.name, rule.name,
                    f"today's cost is ${cost:,.2f} (threshold ${rule.threshold:,.2f})", round(cost, 6))]


def _model_p95(rule: Rule, ctx: Context) -> list[Finding]:
    assert ctx.conn is not None
    params = {"since": _since(ctx, rule.lookback), "min_requests": rule.min_requests}
    return [
        Finding(f"{rule.name}[{model}]", rule.name,
                f"model {model} p95 latency {p95:.2f} s over {requests:,} requests in the last "
                f"{_span(rule.lookback)} (threshold {rule.threshold:g} s)", round(p95, 4))
        for model, requests, p95 in ctx.conn.execute(MODEL_P95_SQL, params)
        if p95 > rule.threshold
    ]


def _gateway_down(rule: Rule, ctx: Context) -> list[Finding]:
    url = f"{(ctx.gateway_url or '').rstrip('/')}/health"
    try:
        status, body = ctx.fetch(url)
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return [Finding(rule.name, rule.name, f"gateway unreachable at {url}: {reason}", None)]
    if status != 200:
        return [Finding(rule.name, rule.name, f"gateway health at {url} answered HTTP {status}", None)]
    try:
        health = json.loads(body).get("status")
    except (ValueError, AttributeError):
        health = None
    if health != "healthy":
        return [Finding(rule.name, rule.name, f"gateway at {url} reports status {health!r}", None)]
    return []


RULE_TYPES: dict[str, RuleType] = {
    "gateway_down": RuleType(False, False, None, _gateway_down,
                             "GET {gateway_url}/health is not {\"status\": \"healthy\"}"),
    "errors_last_hour": RuleType(True, True, "1h", _errors,
                                 "more than `threshold` requests with status >= 400 in `lookback`"),
    "error_rate": RuleType(True, True, "1h", _error_rate,
                           "more than `threshold` % of requests failed in `lookback` "
                           "(at least `min_requests`)"),
    "daily_cost": RuleType(True, True, None, _daily_cost,
                           "today's (UTC) summed cost above `threshold` USD"),
    "model_p95_latency": RuleType(True, True, "1h", _model_p95,
                                  "a model's p95 latency above `threshold` seconds in `lookback` "
                                  "(at least `min_requests`)"),
}
RULE_KEYS = {"name", "type", "threshold", "lookback", "min_requests", "repeat"}


def http_fetch(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (config URL)
            return resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536)


def parse_rules(raw: Any, default_repeat: int) -> list[Rule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"alerts.rules: expected a list of rules, got {type(raw).__name__}")
    rules: list[Rule] = []
    for i, item in enumerate(raw):
        key = f"alerts.rules[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{key}: expected a mapping with a type, got {type(item).__name__}")
        kind = item.get("type")
        if kind not in RULE_TYPES:
            raise ConfigError(f"{key}.type: expected one of {', '.join(RULE_TYPES)}; got {kind!r}")
        spec = RULE_TYPES[kind]
        for unknown in sorted(set(item) - RULE_KEYS):
            log.warning("config: unknown key %s.%s ignored", key, unknown)
        threshold = item.get("threshold")
        if spec.needs_threshold:
            if threshold is None:
                raise ConfigError(f"{key}.threshold: required for {kind}")
            threshold = number(threshold, f"{key}.threshold", minimum=0)
        name = str(item.get("name") or kind)
        if any(r.name == name for r in rules):
            raise ConfigError(f"{key}.name: {name!r} is used twice; give each rule its own name")
        lookback = item.get("lookback", spec.default_lookback)
        rules.append(Rule(
            name=name,
            type=kind,
            threshold=float(threshold or 0),
            lookback=parse_duration(lookback, f"{key}.lookback") if lookback else 86400,
            min_requests=int(number(item.get("min_requests", 20), f"{key}.min_requests", minimum=1)),
            repeat=parse_duration(item["repeat"], f"{key}.repeat") if "repeat" in item else default_repeat,
        ))
    return rules


def number(value: Any, key: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if minimum is not None and result < minimum:
        raise ConfigError(f"{key}: must be >= {minimum:g}, got {value!r}")
    return result


def evaluate(rule: Rule, ctx: Context) -> list[Finding]:
    return RULE_TYPES[rule.type].check(rule, ctx)


def _since(ctx: Context, seconds: int) -> str:
    return utc_timestamp(ctx.now - seconds)


def _span(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} s"
