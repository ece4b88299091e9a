"""Slack incoming webhook (SLACK_WEBHOOK_URL): one readable message per batch.

Slack allows about one message per second per webhook; we send far fewer: a burst of 3, then
6 a minute, and a batch that must wait keeps growing (counts stay exact) until it may go out.
Text from requests (model names, error messages) is escaped for Slack's mrkdwn.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from ..errors import ConfigError
from .batch import FAILURE, SLOW, SUCCESS, Batch, Group
from .webhook import check_url, post_json

WEBHOOK_ENV = "SLACK_WEBHOOK_URL"
MAX_LINES = 10


def escape(text: str) -> str:
    """Slack mrkdwn control characters: &, <, > (and ` would end a code span)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch))


def _span(groups: list[Group]) -> str:
    first = min(g.first for g in groups)
    last = max(g.last for g in groups)
    return f"{_clock(first)}–{_clock(last)} UTC" if last - first >= 1 else f"{_clock(first)} UTC"


class SlackChannel:
    name = "slack"
    burst = 3
    per_minute = 6.0

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def from_env(cls, env: Any, source: str) -> SlackChannel:
        url = env(WEBHOOK_ENV)
        if not url:
            raise ConfigError(
                f"{source}: 'slack' needs {WEBHOOK_ENV} (environment_variables or the environment)"
            )
        return cls(check_url(url, WEBHOOK_ENV))

    def render(self, batch: Batch, title: str) -> dict[str, Any]:
        sections = [
            self._failures(batch),
            self._slow(batch),
            self._successes(batch),
            "\n".join(self._budget_line(b) for b in batch.budgets),
        ]
        if batch.lost:
            sections.append(f"_{batch.lost:,} events were not counted: the callback queue was full._")
        text = f"*{escape(title)}*\n" + "\n\n".join(s for s in sections if s)
        return {"text": text}

    async def deliver(self, session: aiohttp.ClientSession, payload: dict[str, Any], **retry: Any) -> None:
        await post_json(session, self.name, self.url, payload, **retry)

    # -- sections ------------------------------------------------------------------------
    def _failures(self, batch: Batch) -> str:
        groups = batch.sorted_groups(FAILURE)
        if not groups:
            return ""
        total = batch.count(FAILURE)
        lines = [f":rotating_light: *{total:,} failed request{'s' * (total != 1)}* "
                 f"({_span([g for _, g in groups])})"]
        for (model, status, error_type, alias), g in groups[:MAX_LINES]:
            line = f"• `{escape(model)}` → {status} {escape(error_type or 'error')} ×{g.count:,}"
            if alias:
                line += f", key `{escape(alias)}`"
            if g.error:
                line += f"\n    “{escape(g.error)}” (e.g. request `{g.request_id}`)"
            lines.append(line)
        lines.extend(self._more(groups))
        return "\n".join(lines)

    def _slow(self, batch: Batch) -> str:
        groups = batch.sorted_groups(SLOW)
        if not groups:
            return ""
        total = batch.count(SLOW)
        lines = [f":snail: *{total:,} slow request{'s' * (total != 1)}* ({_span([g for _, g in groups])})"]
        for (model, alias), g in groups[:MAX_LINES]:
            line = f"• `{escape(model)}` ×{g.count:,}, slowest {g.max_latency:.1f} s"
            if alias:
                line += f", key `{escape(alias)}`"
            lines.append(line + f" (e.g. request `{g.request_id}`)")
        lines.extend(self._more(groups))
        return "\n".join(lines)

    def _successes(self, batch: Batch) -> str:
        groups = batch.sorted_groups(SUCCESS)
        if not groups:
            return ""
        total = batch.count(SUCCESS)
        lines = [f":white_check_mark: *{total:,} successful request{'s' * (total != 1)}* "
                 f"({_span([g for _, g in groups])})"]
        for (model, alias), g in groups[:MAX_LINES]:
            line = f"• `{escape(model)}` ×{g.count:,}, {g.tokens:,} tokens, ${g.cost:.4f}"
            if alias:
                line += f", key `{escape(alias)}`"
            lines.append(line)
        lines.extend(self._more(groups))
        return "\n".join(lines)

    @staticmethod
    def _budget_line(alert: Any) -> str:
        who = escape(alert.label)
        if alert.level >= 1.0:
            head = f":no_entry: *Budget reached*: {who} has spent ${alert.spend:,.2f} of its ${alert.max_budget:,.2f} budget"
        else:
            head = (f":moneybag: *Budget {alert.level:.0%} used*: {who} has spent "
                    f"${alert.spend:,.2f} of its ${alert.max_budget:,.2f} budget")
        return head + "."

    @staticmethod
    def _more(groups: list) -> list[str]:
        rest = groups[MAX_LINES:]
        if not rest:
            return []
        return [f"• …and {sum(g.count for _, g in rest):,} more in {len(rest)} other group(s)"]
