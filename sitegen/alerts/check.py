"""One alerts run: evaluate every rule, compare with the saved state, notify, save.

An alert fires once when its condition starts, again every `repeat` while it lasts, and once
more when it resolves. A run whose every channel fails keeps the alert un-notified, so the next
run tries again; the state file is saved either way.
"""

from __future__ import annotations

import logging
import smtplib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.config import parse_duration
from proxy.errors import ConfigError
from proxy.settings import Config

from ..data import open_readonly
from ..errors import SitegenError
from .channels import FIRING, REPEAT, RESOLVED, Change, Channel, Notice, parse_channels
from .rules import RULE_TYPES, Context, Finding, Rule, evaluate, http_fetch, parse_rules
from .state import AlertRecord, default_state_path, epoch, load, save, stamp

log = logging.getLogger("sitegen.alerts")

SECTION_KEYS = {"gateway_url", "repeat", "state_file", "channels", "rules"}


class AlertsFailed(SitegenError):
    """A rule could not be evaluated or a channel could not deliver (state was still saved)."""


@dataclass(frozen=True)
class AlertsConfig:
    rules: list[Rule]
    channels: list[Channel]
    gateway_url: str | None = None
    state_file: Path | None = None
    title: str = "Shin Gateway"
    report_url: str | None = None


@dataclass
class CheckResult:
    rules: int = 0
    firing: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    delivered: bool = False


def parse_alerts(config: Config) -> AlertsConfig | None:
    """The validated `alerts:` section; None when there is none (nothing to check)."""
    raw: dict[str, Any] = config.alerts
    if not raw:
        return None
    for unknown in sorted(set(raw) - SECTION_KEYS):
        log.warning("config: unknown key alerts.%s ignored", unknown)
    repeat = parse_duration(raw.get("repeat", "1h"), "alerts.repeat")
    rules = parse_rules(raw.get("rules"), repeat)
    if not rules:
        raise ConfigError("alerts.rules: at least one rule is required, e.g. [{type: gateway_down}]")
    gateway_url = raw.get("gateway_url")
    if gateway_url is not None and not str(gateway_url).startswith(("http://", "https://")):
        raise ConfigError(f"alerts.gateway_url: expected an http(s):// URL, got {gateway_url!r}")
    if any(r.type == "gateway_down" for r in rules) and not gateway_url:
        raise ConfigError("alerts.gateway_url: required by the gateway_down rule "
                          "(e.g. http://localhost:4000)")
    state_file = raw.get("state_file")
    return AlertsConfig(
        rules=rules,
        channels=parse_channels(raw.get("channels"), config.env),
        gateway_url=str(gateway_url) if gateway_url else None,
        state_file=Path(state_file) if state_file else None,
        title=config.report.title,
        report_url=config.report.report_url,
    )


def state_path_for(alerts: AlertsConfig, db: Path, override: Path | None = None) -> Path:
    return override or alerts.state_file or default_state_path(db)


def run_check(
    alerts: AlertsConfig,
    db: Path,
    state_path: Path,
    now: float,
    *,
    dry_run: bool = False,
    fetch: Any = http_fetch,
) -> CheckResult:
    result = CheckResult(rules=len(alerts.rules))
    records = load(state_path)
    findings, evaluated = _evaluate(alerts, db, now, fetch, result)
    by_name = {r.name: r for r in alerts.rules}

    for ident, finding in findings.items():
        record = records.get(ident)
        if record is None or record.status != "firing":
            records[ident] = AlertRecord(finding.rule, "firing", finding.message, finding.value, stamp(now))
            result.changes.append(Change(FIRING, ident, finding.message, stamp(now)))
            continue
        record.message, record.value = finding.message, finding.value
        last = epoch(record.last_notified)
        if last is None:
            result.changes.append(Change(FIRING, ident, finding.message, record.since))
        elif now - last >= by_name[finding.rule].repeat:
            result.changes.append(Change(REPEAT, ident, finding.message, record.since))
    for ident, record in records.items():
        if record.status != "firing" or ident in findings:
            continue
        if record.rule not in by_name:  # the rule left the config: forget it quietly
            record.status, record.resolved_at = "resolved", stamp(now)
        elif record.rule in evaluated:
            result.changes.append(Change(RESOLVED, ident, record.message, record.since))
    result.firing = sorted(findings)
    if dry_run:
        return result

    if result.changes:
        notice = Notice(alerts.title, result.changes, alerts.report_url)
        for channel in alerts.channels:
            try:
                channel.send(notice)
                result.delivered = True
            except (OSError, smtplib.SMTPException) as exc:
                result.problems.append(f"channel {channel.name}: {exc}")
    if result.delivered:
        for change in result.changes:
            record = records[change.ident]
            if change.state == RESOLVED:
                record.status, record.resolved_at = "resolved", stamp(now)
            else:
                record.last_notified = stamp(now)
    save(state_path, records, now)
    return result


def _evaluate(
    alerts: AlertsConfig, db: Path, now: float, fetch: Any, result: CheckResult
) -> tuple[dict[str, Finding], set[str]]:
    needs_db = any(RULE_TYPES[r.type].needs_db for r in alerts.rules)
    conn = open_readonly(db) if needs_db else None
    ctx = Context(conn=conn, now=now, gateway_url=alerts.gateway_url, fetch=fetch)
    findings: dict[str, Finding] = {}
    evaluated: set[str] = set()
    try:
        for rule in alerts.rules:
            try:
                found = evaluate(rule, ctx)
            except sqlite3.Error as exc:
                result.problems.append(f"rule {rule.name}: {exc}")
                continue
            evaluated.add(rule.name)
            findings.update((f.ident, f) for f in found)
    finally:
        if conn is not None:
            conn.close()
    return findings, evaluated
