"""Metrics read at scrape time from state the gateway keeps anyway: budgets, the request log's
writer, and the HTTP requests in flight."""

from __future__ import annotations

import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ...callbacks import CALLBACKS
from ...state import WRITER
from ..accounts import Accounts
from ..shutdown import IN_FLIGHT

# LiteLLM's budget gauges and their labels, per kind of budget.
_BUDGET_LABELS = {
    "key": ["hashed_api_key", "api_key_alias"],
    "team": ["team", "team_alias"],
    "user": ["user"],
    "end_user": ["end_user"],
}
_BUDGET_NAMES = {
    # kind: (remaining, max, remaining hours)
    "key": ("litellm_remaining_api_key_budget_metric", "litellm_api_key_max_budget_metric",
            "litellm_api_key_budget_remaining_hours_metric"),
    "team": ("litellm_remaining_team_budget_metric", "litellm_team_max_budget_metric",
             "litellm_team_budget_remaining_hours_metric"),
    "user": ("litellm_remaining_user_budget_metric", "litellm_user_max_budget_metric",
             "litellm_user_budget_remaining_hours_metric"),
    "end_user": ("litellm_remaining_customer_budget_metric", "litellm_customer_max_budget_metric",
                 "litellm_customer_budget_remaining_hours_metric"),
}
_WHO = {"key": "api key", "team": "team", "user": "user", "end_user": "customer (end user)"}


class _Collector:
    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: families depend on the state


class AccountsCollector(_Collector):
    """Budgets, rate limits and counts of users and teams, as the keys service holds them now."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def collect(self) -> Iterator[Metric]:
        yield from self._budgets()
        yield from self._rate_limits()
        yield from self._counts()

    def _budgets(self) -> Iterator[Metric]:
        families: dict[str, tuple[GaugeMetricFamily, ...]] = {}
        for kind, (remaining, maximum, hours) in _BUDGET_NAMES.items():
            who, labels = _WHO[kind], _BUDGET_LABELS[kind]
            families[kind] = (
                GaugeMetricFamily(remaining, f"USD left in the {who}'s budget this period.", labels=labels),
                GaugeMetricFamily(maximum, f"The {who}'s budget in USD per period.", labels=labels),
                GaugeMetricFamily(hours, f"Hours until the {who}'s budget period resets.", labels=labels),
            )
        now = time.time()
        for budget in self.accounts.budgets():
            remaining, maximum, hours = families[budget.kind]
            values = [budget.ident, budget.alias] if budget.kind in ("key", "team") else [budget.ident]
            remaining.add_metric(values, budget.remaining)
            maximum.add_metric(values, budget.max_budget)
            left = budget.remaining_hours(now)
            if left is not None:
                hours.add_metric(values, left)
        for trio in families.values():
            yield from trio
        gateway = self.accounts.gateway_budget()
        if gateway is not None:
            spend, max_budget = gateway
            family = GaugeMetricFamily(
                "shin_remaining_gateway_budget_metric",
                "USD left in the gateway-wide budget (litellm_settings.max_budget).",
            )
            family.add_metric([], max_budget - spend)
            yield family

    def _rate_limits(self) -> Iterator[Metric]:
        key, team = ["hashed_api_key", "api_key_alias"], ["team", "team_alias"]
        per_model = {
            "requests": GaugeMetricFamily(
                "litellm_remaining_api_key_requests_for_model",
                "Requests the key may still make this minute under its per-model rpm limit.",
                labels=[*key, "model"]),
            "tokens": GaugeMetricFamily(
                "litellm_remaining_api_key_tokens_for_model",
                "Tokens the key may still use this minute under its per-model tpm limit.",
                labels=[*key, "model"]),
        }
        allowed = {
            "key": GaugeMetricFamily("litellm_api_key_rate_limit_allowed_metric",
                                     "The key's rpm_limit / tpm_limit, by rate_limit_type.",
                                     labels=[*key, "rate_limit_type"]),
            "team": GaugeMetricFamily("litellm_team_rate_limit_allowed_metric",
                                      "The team's rpm_limit / tpm_limit, by rate_limit_type.",
                                      labels=[*team, "rate_limit_type"]),
        }
        used = {
            "key": GaugeMetricFamily("litellm_api_key_rate_limit_used_metric",
                                     "Requests or tokens the key used in the last minute, by rate_limit_type.",
                                     labels=[*key, "rate_limit_type"]),
            "team": GaugeMetricFamily("litellm_team_rate_limit_used_metric",
                                      "Requests or tokens the team used in the last minute, by rate_limit_type.",
                                      labels=[*team, "rate_limit_type"]),
        }
        for limit in self.accounts.rate_limits():
            if limit.model:
                per_model[limit.limit_type].add_metric(
                    [limit.ident, limit.alias, limit.model], max(0, limit.limit - limit.used))
                continue
            values = [limit.ident, limit.alias, limit.limit_type]
            allowed[limit.kind].add_metric(values, limit.limit)
            used[limit.kind].add_metric(values, limit.used)
        yield from (*per_model.values(), *allowed.values(), *used.values())

    def _counts(self) -> Iterator[Metric]:
        counts = self.accounts.counts()
        if counts is None:
            return
        users, teams, members = counts
        total_users = GaugeMetricFamily("litellm_total_users", "Users (/user/new) the gateway knows.")
        total_users.add_metric([], users)
        total_teams = GaugeMetricFamily("litellm_teams_count", "Teams (/team/new) the gateway knows.")
        total_teams.add_metric([], teams)
        team_members = GaugeMetricFamily(
            "litellm_team_members_metric", "Members of each team.", labels=["team", "team_alias"]
        )
        for team_id, alias, count in members:
            team_members.add_metric([team_id, alias], count)
        yield from (total_users, total_teams, team_members)


class CallbackCollector(_Collector):
    """Callback messages (Slack, webhook) that could not be delivered, by channel."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "litellm_callback_logging_failures_metric",
            "Callback messages lost after every retry, by callback (slack, webhook).",
            labels=["callback_name"],
        )
        dispatcher = self.app.get(CALLBACKS)
        if dispatcher is not None:
            for name, count in sorted(dispatcher.failed_by_channel.items()):
                family.add_metric([name], count)
        yield family


class InFlightCollector(_Collector):
    """LiteLLM's litellm_in_flight_requests: HTTP requests being handled (any route)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "litellm_in_flight_requests", "HTTP requests being handled now (any route, this one included)."
        )
        in_flight = self.app.get(IN_FLIGHT)
        family.add_metric([], len(in_flight) if in_flight is not None else 0)
        yield family


class WriterCollector(_Collector):
    """The request log's state (LogWriter.status()): a growing backlog means SQLite cannot
    keep up; spilled rows mean it refused writes (docs/operations.md)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        writer = self.app.get(WRITER)
        if writer is None:
            return
        status = writer.status()
        backlog = GaugeMetricFamily("shin_request_log_backlog", "Rows queued, not yet committed or spilled.")
        backlog.add_metric([], status.backlog)
        degraded = GaugeMetricFamily(
            "shin_request_log_degraded", "1 while the request log is degraded (see /health)."
        )
        degraded.add_metric([], int(status.degraded))
        pending = GaugeMetricFamily(
            "shin_request_log_spill_pending", "Rows in the spill file waiting to be replayed."
        )
        pending.add_metric([], status.spilled_pending)
        counters = (
            ("written", "Rows committed (live and replayed).", status.rows_written),
            ("spilled", "Rows written to the spill file because the database refused them.", status.rows_spilled),
            ("replayed", "Rows committed from the spill file.", status.rows_replayed),
            ("refused", "Rows SQLite refused outright, kept in the refused file.", status.rows_refused),
            ("failed", "Rows neither committed nor spilled (lost; only ever at exit).", status.rows_lost),
        )
        yield from (backlog, degraded, pending)
        for name, help_text, value in counters:
            counter = CounterMetricFamily(f"shin_request_log_rows_{name}", help_text)
            counter.add_metric([], value)
            yield counter
