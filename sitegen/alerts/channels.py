"""Where threshold alerts go: stdout, a Slack webhook, e-mail over SMTP.

    alerts:
      channels:
        - type: stdout
        - type: slack          # webhook_url, default: SLACK_WEBHOOK_URL
        - type: email
          to: [ops@example.com]
          from: gateway@example.com        # default: SMTP_FROM, else shin-gateway@localhost
          # host/port/starttls/user/password default to SMTP_HOST (localhost), SMTP_PORT
          # (587 with STARTTLS, else 25), SMTP_STARTTLS (false), SMTP_USER, SMTP_PASSWORD

One message per channel per run carries every alert that changed (or is due again).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol, TextIO

from proxy.errors import ConfigError

FIRING, REPEAT, RESOLVED = "FIRING", "STILL FIRING", "RESOLVED"


@dataclass(frozen=True)
class Change:
    state: str  # FIRING, REPEAT or RESOLVED
    ident: str
    message: str
    since: str


@dataclass
class Notice:
    title: str
    changes: list[Change]
    report_url: str | None = None

    @property
    def subject(self) -> str:
        firing = [c for c in self.changes if c.state != RESOLVED]
        first = (firing or self.changes)[0]
        label = "ALERT" if firing else "RESOLVED"
        more = f" (+{len(self.changes) - 1} more)" if len(self.changes) > 1 else ""
        return f"[{self.title}] {label}: {first.ident}: {first.message}{more}"

    def lines(self) -> list[str]:
        out = []
        for c in self.changes:
            if c.state == RESOLVED:
                out.append(f"RESOLVED {c.ident}: was {c.message} (firing since {c.since} UTC)")
            else:
                out.append(f"{c.state} {c.ident}: {c.message} (since {c.since} UTC)")
        if self.report_url:
            out.append(f"Report: {self.report_url}")
        return out


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> None:
        """Deliver or raise OSError/smtplib.SMTPException with a reason."""


def _printable(text: str) -> str:
    # Model names come from requests: keep terminal control characters out of the output.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


@dataclass
class StdoutChannel:
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    name: str = "stdout"

    def send(self, notice: Notice) -> None:
        self.stream.write(_printable(notice.subject) + "\n")
        for line in notice.lines():
            self.stream.write("  " + _printable(line) + "\n")
        self.stream.flush()


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class SlackChannel:
    url: str
    attempts: int = 3
    backoff: float = 1.0
    name: str = "slack"

    def send(self, notice: Notice) -> None:
        icon = {FIRING: ":rotating_light:", REPEAT: ":warning:", RESOLVED: ":white_check_mark:"}
        lines = [f"*{slack_escape(notice.title)}*"]
        for c in notice.changes:
            text = f"{icon[c.state]} *{c.state}* `{slack_escape(c.ident)}`: {slack_escape(c.message)}"
            lines.append(text + (f" (firing since {c.since} UTC)" if c.state == RESOLVED else ""))
        if notice.report_url:
            lines.append(f"<{notice.report_url}|Open the report>")
        body = json.dumps({"text": "\n".join(lines)}).encode()
        reason = ""
        for attempt in range(self.attempts):
            request = urllib.request.Request(
                self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
                    if resp.status < 300:
                        return
                    reason = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    break
            except OSError as exc:
                reason = str(getattr(exc, "reason", exc))
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff * 2**attempt)
        # The webhook URL carries Slack's token: never in the message.
        raise OSError(f"Slack webhook failed: {reason}")


@dataclass
class EmailChannel:
    host: str
    port: int
    starttls: bool
    user: str | None
    password: str | None
    sender: str
    to: list[str]
    name: str = "email"

    def send(self, notice: Notice) -> None:
        message = EmailMessage()
        message["Subject"] = notice.subject.replace("\n", " ")[:200]
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message.set_content("\n".join(notice.lines()) + "\n")
        with smtplib.SMTP(self.host, self.port, timeout=15) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


def parse_channels(raw: Any, env: Callable[[str], str | None]) -> list[Channel]:
    if raw is None:
        return [StdoutChannel()]
    if not isinstance(raw, list) or not raw:
        raise ConfigError("alerts.channels: expected a non-empty list, e.g. [{type: stdout}]")
    channels: list[Channel] = []
    for i, item in enumerate(raw):
        key = f"alerts.channels[{i}]"
        if isinstance(item, str):
            item = {"type": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{key}: expected a mapping with a type")
        kind = item.get("type")
        if kind == "stdout":
            channels.append(StdoutChannel())
        elif kind == "slack":
            url = item.get("webhook_url") or env("SLACK_WEBHOOK_URL")
            if not url or not str(url).startswith(("http://", "https://")):
                raise ConfigError(f"{key}.webhook_url: an http(s) URL is required "
                                  "(or SLACK_WEBHOOK_URL in environment_variables or the environment)")
            channels.append(SlackChannel(str(url)))
        elif kind == "email":
            channels.append(_email(item, key, env))
        else:
            raise ConfigError(f"{key}.type: expected stdout, slack or email; got {kind!r}")
    return channels


def _email(item: dict[str, Any], key: str, env: Callable[[str], str | None]) -> EmailChannel:
    to = item.get("to")
    if isinstance(to, str):
        to = [to]
    if not to or not isinstance(to, list) or not all(isinstance(a, str) and "@" in a for a in to):
        raise ConfigError(f"{key}.to: one or more e-mail addresses are required")

    def setting(name: str, variable: str) -> str | None:
        value = item.get(name)
        return str(value) if value is not None else env(variable)

    starttls_text = (setting("starttls", "SMTP_STARTTLS") or "").strip().lower()
    if starttls_text not in {"", "true", "false", "1", "0", "yes", "no"}:
        raise ConfigError(f"{key}.starttls: expected true or false, got {starttls_text!r}")
    starttls = starttls_text in {"true", "1", "yes"}
    port_text = setting("port", "SMTP_PORT") or ("587" if starttls else "25")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{key}.port: expected a TCP port, got {port_text!r}")
    return EmailChannel(
        host=setting("host", "SMTP_HOST") or "localhost",
        port=int(port_text),
        starttls=starttls,
        user=setting("user", "SMTP_USER") or None,
        password=setting("password", "SMTP_PASSWORD"),
        sender=str(item.get("from") or env("SMTP_FROM") or "shin-gateway@localhost"),
        to=list(to),
    )
