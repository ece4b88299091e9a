"""Threshold alerts: a real log database, a real SMTP server (aiosmtpd), a real webhook server,
a real gateway for /health; `python -m sitegen alerts` through sitegen's own CLI entry point."""

from __future__ import annotations

import asyncio
import email
import hashlib
import json
import shutil
import sqlite3
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.logdb.record import RequestRecord, utc_timestamp
from proxy.logdb.writer import LogWriter
from proxy.server.app import create_app
from sitegen.alerts import active_alerts, default_state_path
from sitegen.alerts.channels import StdoutChannel
from sitegen.alerts.check import parse_alerts, run_check
from sitegen.cli import main as sitegen_main

from .conftest import free_port


def write_log(path: Path, now: float) -> None:
    """60 requests in the last 10 minutes: 15 failures, $12 spent, `slow<b>` p95 ≈ 9 s."""
    writer = LogWriter(path)
    writer.start()
    for i in range(60):
        slow = i % 3 == 0
        writer.submit(RequestRecord(
            timestamp=utc_timestamp(now - 600 + i * 10),
            request_id=f"r{i}",
            endpoint="/v1/chat/completions",
            model="slow<b>" if slow else "fast",
            status_code=500 if i % 4 == 0 else 200,
            cost=0.2,
            latency=8.0 + (i % 10) / 10 if slow else 0.4,
            upstream_latency=7.5 if slow else 0.3,  # each reached the provider
            total_tokens=10,
        ))
    writer.stop()


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"alerts", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def smtp():
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(),
                            authenticator=_authenticator, auth_require_tls=False)
    controller.start()
    yield sink, controller.port
    controller.stop()


class Hook:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.texts: list[str] = []
        self.app = web.Application()
        self.app.router.add_post("/slack", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        if self.status != 200:
            return web.Response(status=self.status)
        self.texts.append((await request.json())["text"])
        return web.Response(text="ok")


def config(alerts: dict[str, Any], env: dict[str, str] | None = None):
    return parse_config({"alerts": alerts, "environment_variables": env or {}}, env={})


DB_RULES = [
    {"type": "errors_last_hour", "threshold": 10},
    {"type": "error_rate", "threshold": 20, "min_requests": 20},
    {"type": "daily_cost", "threshold": 5},
    {"type": "model_p95_latency", "threshold": 5, "lookback": "1h", "min_requests": 10},
]


NOON = 1_767_268_800.0  # 2026-01-01 12:00 UTC


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_rules_fire_once_repeat_and_resolve_over_email_and_slack(
    tmp_path: Path, smtp, aiohttp_server
) -> None:
    now = NOON  # a fixed "now": the whole story happens on one UTC day
    db = tmp_path / "litellm.db"
    write_log(db, now)
    before = digest(db)
    sink, port = smtp
    hook = Hook()
    server = await aiohttp_server(hook.app)
    alerts = parse_alerts(config(
        {
            "repeat": "10m",
            "channels": [
                {"type": "slack"},
                {"type": "email", "to": ["ops@example.com"], "from": "gw@example.com"},
            ],
            "rules": DB_RULES,
        },
        {"SLACK_WEBHOOK_URL": str(server.make_url("/slack")), "SMTP_HOST": "127.0.0.1",
         "SMTP_PORT": str(port), "SMTP_USER": "alerts", "SMTP_PASSWORD": "s3cret"},
    ))
    state = default_state_path(db)

    def run(at: float):
        return run_check(alerts, db, state, at)

    first = await asyncio.to_thread(run, now)
    assert first.problems == [] and first.delivered
    assert [c.state for c in first.changes] == ["FIRING"] * 4
    assert first.firing == ["daily_cost", "error_rate", "errors_last_hour", "model_p95_latency[slow<b>]"]
    (mail,) = sink.messages
    assert sink.envelopes == [("gw@example.com", ["ops@example.com"])]
    assert mail["Subject"].startswith("[Shin Gateway] ALERT: ")
    body = mail.get_payload()
    assert "FIRING errors_last_hour: 15 failed requests in the last hour (threshold 10)" in body
    assert "FIRING error_rate: error rate 25.0% (15 of 60 requests)" in body
    assert "FIRING daily_cost: today's cost is $12.00 (threshold $5.00)" in body
    assert "model slow<b> p95 latency 8.9" in body
    (text,) = hook.texts
    assert "slow&lt;b&gt;" in text and "slow<b>" not in text
    assert {a["ident"] for a in active_alerts(state)} == set(first.firing)

    again = await asyncio.to_thread(run, now + 60)  # still firing, inside the repeat window
    assert again.changes == [] and len(sink.messages) == 1 and len(hook.texts) == 1

    later = await asyncio.to_thread(run, now + 660)  # past `repeat`: said once more
    assert {c.state for c in later.changes} == {"STILL FIRING"}
    assert len(later.changes) == 4
    assert len(sink.messages) == 2

    resolved = await asyncio.to_thread(run, now + 2 * 86400)  # nothing in the last hour / today
    assert {c.state for c in resolved.changes} == {"RESOLVED"} and len(resolved.changes) == 4
    assert "RESOLVED errors_last_hour: was 15 failed requests" in sink.messages[-1].get_payload()
    assert active_alerts(state) == []
    saved = json.loads(state.read_text())["alerts"]
    assert {v["status"] for v in saved.values()} == {"resolved"}
    assert digest(db) == before  # the log is only ever read
    assert not Path(f"{db}-journal").exists()


async def test_gateway_down_fires_then_resolves_when_it_comes_back(tmp_path: Path, aiohttp_server) -> None:
    port = free_port()
    alerts = parse_alerts(config({
        "gateway_url": f"http://127.0.0.1:{port}",
        "channels": ["stdout"],
        "rules": [{"type": "gateway_down", "name": "gateway"}],
    }))
    state = tmp_path / "state.json"
    db = tmp_path / "absent.db"  # health needs no database
    down = await asyncio.to_thread(run_check, alerts, db, state, time.time())
    assert [(c.state, c.ident) for c in down.changes] == [("FIRING", "gateway")]
    assert "unreachable" in down.changes[0].message
    assert [a["rule"] for a in active_alerts(state)] == ["gateway"]

    app = create_app(parse_config({"general_settings": {"log_file": None}}, env={}),
                     db_path=tmp_path / "gw.db")
    await aiohttp_server(app, port=port)
    up = await asyncio.to_thread(run_check, alerts, db, state, time.time())
    assert [(c.state, c.ident) for c in up.changes] == [("RESOLVED", "gateway")]
    assert active_alerts(state) == []


async def test_a_failed_channel_keeps_the_alert_due(tmp_path: Path, aiohttp_server) -> None:
    now = time.time()
    db = tmp_path / "litellm.db"
    write_log(db, now)
    hook = Hook(status=404)  # not retried: Slack answers 404 for a revoked webhook
    server = await aiohttp_server(hook.app)
    raw = {"channels": [{"type": "slack", "webhook_url": str(server.make_url("/slack"))}],
           "rules": [{"type": "errors_last_hour", "threshold": 1}]}
    state = tmp_path / "state.json"
    failed = await asyncio.to_thread(run_check, parse_alerts(config(raw)), db, state, now)
    assert failed.problems and "HTTP 404" in failed.problems[0] and not failed.delivered
    assert str(server.make_url("/slack")) not in failed.problems[0]  # the URL is a secret
    assert [a["last_notified"] for a in active_alerts(state)] == [None]
    hook.status = 200
    retried = await asyncio.to_thread(run_check, parse_alerts(config(raw)), db, state, now + 30)
    assert [c.state for c in retried.changes] == ["FIRING"] and retried.delivered
    assert len(hook.texts) == 1


def test_cli_prints_to_stdout_and_keeps_state_beside_the_db(tmp_path: Path, capsys) -> None:
    db = tmp_path / "litellm.db"
    write_log(db, time.time())
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"alerts": {"channels": ["stdout"], "rules": DB_RULES[:2]}}))
    assert sitegen_main(["alerts", "--db", str(db), "--config", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert "FIRING errors_last_hour: 15 failed requests" in out
    assert "2 rule(s) checked, 2 firing" in err
    assert (tmp_path / "litellm-alerts.json").exists()
    assert sitegen_main(["alerts", "--db", str(db), "--config", str(cfg), "-q"]) == 0
    assert capsys.readouterr() == ("", "")  # nothing new to say

    dry = tmp_path / "dry.json"
    assert sitegen_main(["alerts", "--db", str(db), "--config", str(cfg), "--state", str(dry), "--dry-run"]) == 0
    assert "would notify: FIRING error_rate" in capsys.readouterr().out and not dry.exists()


def test_cli_without_alerts_section_is_a_no_op(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("general_settings: {log_file: null}\n")
    assert sitegen_main(["alerts", "--db", str(tmp_path / "none.db"), "--config", str(cfg)]) == 0
    assert "nothing to check" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"rules": [{"type": "cpu"}]}, r"alerts\.rules\[0\]\.type: expected one of gateway_down"),
        ({"rules": [{"type": "daily_cost"}]}, r"alerts\.rules\[0\]\.threshold: required"),
        ({"rules": [{"type": "error_rate", "threshold": "lots"}]}, r"alerts\.rules\[0\]\.threshold: expected a number"),
        ({"rules": [{"type": "gateway_down"}]}, r"alerts\.gateway_url: required by the gateway_down rule"),
        ({"rules": [{"type": "errors_last_hour", "threshold": 1, "lookback": "soon"}]}, r"alerts\.rules\[0\]\.lookback"),
        ({"rules": [{"type": "daily_cost", "threshold": 1}, {"type": "daily_cost", "threshold": 2}]},
         r"alerts\.rules\[1\]\.name: 'daily_cost' is used twice"),
        ({"channels": [{"type": "email"}], "rules": [{"type": "daily_cost", "threshold": 1}]},
         r"alerts\.channels\[0\]\.to: one or more e-mail addresses"),
        ({"channels": [{"type": "email", "to": "a@b.c", "port": "smtp"}], "rules": [{"type": "daily_cost", "threshold": 1}]},
         r"alerts\.channels\[0\]\.port: expected a TCP port"),
        ({"channels": [{"type": "slack"}], "rules": [{"type": "daily_cost", "threshold": 1}]},
         r"alerts\.channels\[0\]\.webhook_url"),
        ({"channels": [{"type": "pager"}], "rules": [{"type": "daily_cost", "threshold": 1}]},
         r"alerts\.channels\[0\]\.type"),
        ({"repeat": 5}, r"alerts\.repeat"),
    ],
)
def test_config_errors_name_the_key(alerts: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_alerts(config(alerts))


def test_cli_reports_config_errors_in_one_line(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"alerts": {"rules": [{"type": "daily_cost"}]}}))
    assert sitegen_main(["alerts", "--config", str(cfg)]) == 2
    assert "alerts.rules[0].threshold: required" in capsys.readouterr().err


def test_works_on_a_guide_only_database(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("""CREATE TABLE request_log (id INTEGER PRIMARY KEY, timestamp DATETIME,
        user_id TEXT, model TEXT, messages TEXT, response TEXT, prompt_tokens INTEGER,
        completion_tokens INTEGER, total_tokens INTEGER, cost REAL, latency REAL, status_code INTEGER)""")
    stamp = utc_timestamp(time.time() - 60)
    conn.executemany(
        "INSERT INTO request_log (timestamp, model, cost, latency, status_code) VALUES (?, ?, ?, ?, ?)",
        [(stamp, "gpt-4", 1.0, 12.0, 502)] * 30,
    )
    conn.commit()
    conn.close()
    alerts = parse_alerts(config({"rules": DB_RULES}))
    alerts = type(alerts)(**{**alerts.__dict__, "channels": [StdoutChannel()]})
    result = run_check(alerts, db, tmp_path / "s.json", time.time(), dry_run=True)
    assert result.problems == []
    assert "model_p95_latency[gpt-4]" in result.firing and "errors_last_hour" in result.firing


@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


async def test_email_over_starttls_with_login(tmp_path: Path, tls_cert, monkeypatch) -> None:
    cert, key = tls_cert
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), tls_context=server_tls,
                            require_starttls=True, authenticator=_authenticator, auth_require_tls=True)
    controller.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client verifies the server's certificate
        db = tmp_path / "litellm.db"
        write_log(db, NOON)
        alerts = parse_alerts(config(
            {"channels": [{"type": "email", "to": "ops@example.com"}],
             "rules": [{"type": "errors_last_hour", "threshold": 1}]},
            {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(controller.port), "SMTP_STARTTLS": "true",
             "SMTP_USER": "alerts", "SMTP_PASSWORD": "s3cret"},
        ))
        result = await asyncio.to_thread(run_check, alerts, db, tmp_path / "s.json", NOON)
    finally:
        controller.stop()
    assert result.problems == [] and result.delivered
    (mail,) = sink.messages
    assert "FIRING errors_last_hour" in mail.get_payload()
    assert sink.envelopes == [("shin-gateway@localhost", ["ops@example.com"])]
