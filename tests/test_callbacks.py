"""Failure/success callbacks, slow and budget alerts, against a real local webhook server."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.callbacks import CALLBACKS
from proxy.callbacks.budgets import BudgetWatcher
from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.server.app import create_app
from proxy.server.budgetview import Budget

from .conftest import MASTER_KEY, default_raw_config, free_port


class Receiver:
    """A real HTTP server standing in for Slack and for a generic webhook consumer."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.hits = 0
        self.payloads: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/hook", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.hits <= self.fail_first:
            return web.Response(status=500, text="try later")
        self.payloads.append(await request.json())
        return web.Response(text="ok")

    @property
    def texts(self) -> list[str]:
        return [p["text"] for p in self.payloads]


@pytest.fixture
def receiver_factory(aiohttp_server):
    async def start(fail_first: int = 0) -> tuple[Receiver, str]:
        receiver = Receiver(fail_first)
        server = await aiohttp_server(receiver.app)
        return receiver, str(server.make_url("/hook"))

    return start


def config_with(upstream_base: str, dead_base: str, **sections: dict[str, Any]) -> dict[str, Any]:
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append(
        {"model_name": "slowish", "litellm_params": {"model": "openai/slow-0.6", "api_base": upstream_base}}
    )
    raw["general_settings"]["callback_batch_seconds"] = 0.1
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


async def post_chat(session: aiohttp.ClientSession, url: str, model: str, content: str = "hi") -> int:
    async with session.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": content}]},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    ) as resp:
        await resp.read()
        return resp.status


def failed_counts(texts: list[str]) -> int:
    return sum(int(n.replace(",", "")) for t in texts for n in re.findall(r"\*([\d,]+) failed request", t))


async def test_a_burst_of_failures_is_a_few_grouped_messages(
    gateway_factory, receiver_factory, upstream_base, dead_base
) -> None:
    receiver, url = await receiver_factory()
    gw = await gateway_factory(config_with(
        upstream_base, dead_base,
        litellm_settings={"failure_callback": ["slack"]},
        environment_variables={"SLACK_WEBHOOK_URL": url},
    ))
    sem = asyncio.Semaphore(50)

    async def one(session: aiohttp.ClientSession, i: int) -> int:
        async with sem:
            return await post_chat(session, gw.url, "broken" if i % 5 else "bad-request")

    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(*(one(session, i) for i in range(500)))
        assert await post_chat(session, gw.url, "house-model") == 200
    assert statuses.count(503) == 400 and statuses.count(400) == 100
    await gw.server.close()  # shutdown sends what is still pending

    assert 1 <= len(receiver.payloads) <= 4  # Slack's burst of 3, then whatever was left at exit
    assert failed_counts(receiver.texts) == 500  # grouped, not lost
    text = "\n".join(receiver.texts)
    assert "`broken` → 503 upstream_error" in text
    assert "`bad-request` → 400" in text
    assert "key `master`" in text
    assert "fake upstream error for error-503" in text
    assert "successful" not in text  # no success_callback configured


async def test_webhook_gets_success_and_failure_events_without_prompts(
    gateway_factory, receiver_factory, upstream_base, dead_base
) -> None:
    receiver, url = await receiver_factory()
    gw = await gateway_factory(config_with(
        upstream_base, dead_base,
        litellm_settings={"success_callback": ["webhook"], "failure_callback": ["generic_api"]},
        environment_variables={"GENERIC_LOGGER_ENDPOINT": url, "GENERIC_LOGGER_HEADERS": "X-Token=abc"},
    ))
    async with aiohttp.ClientSession() as session:
        for i in range(3):
            assert await post_chat(session, gw.url, "house-model", f"secret prompt {i}") == 200
        assert await post_chat(session, gw.url, "broken", "secret prompt") == 503
        assert await post_chat(session, gw.url, "nope<b>", "secret prompt") == 404
    await gw.server.close()

    events = [e for p in receiver.payloads for e in p["events"]]
    assert sorted(e["kind"] for e in events) == ["failure", "failure", "success", "success", "success"]
    assert sum(p["counts"]["success"] for p in receiver.payloads) == 3
    failure = next(e for e in events if e["status_code"] == 503)
    assert failure["model"] == "broken" and failure["key_alias"] == "master"
    assert failure["error_type"] == "upstream_error"
    unknown = next(e for e in events if e["status_code"] == 404)
    assert unknown["model"] == "(unknown model)"  # client text is not a model label
    rows = {r["request_id"]: r for r in gw.rows()}
    assert {e["request_id"] for e in events} == set(rows)
    assert all(e["cost"] == rows[e["request_id"]]["cost"] for e in events)
    assert "secret prompt" not in repr(receiver.payloads)


async def test_dead_webhook_never_affects_requests(gateway_factory, upstream_base, dead_base) -> None:
    gw = await gateway_factory(config_with(
        upstream_base, dead_base,
        litellm_settings={"failure_callback": ["slack"], "success_callback": ["slack"]},
        environment_variables={"SLACK_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hook"},
    ))
    dispatcher = gw.app[CALLBACKS]
    dispatcher.backoff = 0.01
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            assert await post_chat(session, gw.url, "house-model") == 200
            assert await post_chat(session, gw.url, "broken") == 503
        await asyncio.sleep(0.3)  # let deliveries fail while requests keep flowing
        for _ in range(20):
            assert await post_chat(session, gw.url, "house-model") == 200
    await gw.server.close()
    assert dispatcher.failed >= 1 and dispatcher.delivered == 0
    assert len(gw.rows()) == 60


async def test_webhook_errors_are_retried(gateway_factory, receiver_factory, upstream_base, dead_base) -> None:
    receiver, url = await receiver_factory(fail_first=2)
    gw = await gateway_factory(config_with(
        upstream_base, dead_base,
        litellm_settings={"failure_callback": ["slack"]},
        environment_variables={"SLACK_WEBHOOK_URL": url},
    ))
    gw.app[CALLBACKS].backoff = 0.01
    async with aiohttp.ClientSession() as session:
        assert await post_chat(session, gw.url, "broken") == 503
    for _ in range(200):  # bounded wait for the third attempt to land
        if receiver.payloads:
            break
        await asyncio.sleep(0.02)
    assert receiver.hits == 3
    assert failed_counts(receiver.texts) == 1


async def test_slow_requests_alert_and_text_is_escaped(
    gateway_factory, receiver_factory, upstream_base, dead_base
) -> None:
    receiver, url = await receiver_factory()
    gw = await gateway_factory(config_with(
        upstream_base, dead_base,
        general_settings={"slow_request_threshold": 0.3, "alerting": ["slack"]},
        litellm_settings={"failure_callback": ["webhook"]},
        environment_variables={"SLACK_WEBHOOK_URL": url, "GENERIC_LOGGER_ENDPOINT": url},
    ))
    async with aiohttp.ClientSession() as session:
        assert await post_chat(session, gw.url, "slowish") == 200
        assert await post_chat(session, gw.url, "house-model") == 200
        assert await post_chat(session, gw.url, "<script>x</script>") == 404
    await gw.server.close()
    slack = [t for t in (p.get("text") for p in receiver.payloads) if t]
    assert any("*1 slow request*" in t and "`slowish` ×1" in t for t in slack)
    assert all("failed request" not in t for t in slack)  # failures go to the webhook only
    hooks = [p for p in receiver.payloads if "events" in p]
    assert [e["status_code"] for p in hooks for e in p["events"]] == [404]


async def test_slack_escapes_request_text(gateway_factory, receiver_factory, upstream_base, dead_base) -> None:
    receiver, url = await receiver_factory()
    gw = await gateway_factory(config_with(
        upstream_base, dead_base,
        litellm_settings={"failure_callback": ["slack"]},
        environment_variables={"SLACK_WEBHOOK_URL": url},
    ))
    async with aiohttp.ClientSession() as session:
        assert await post_chat(session, gw.url, "<script>x</script>&") == 404
    await gw.server.close()
    text = "\n".join(receiver.texts)
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;&amp;" in text


async def test_gateway_budget_alert_once_per_crossing(
    gateway_factory, receiver_factory, upstream_base, dead_base
) -> None:
    receiver, url = await receiver_factory()
    gw = await gateway_factory(config_with(
        upstream_base, dead_base,
        litellm_settings={"failure_callback": ["slack"], "max_budget": 0.00001, "budget_duration": "30d"},
        environment_variables={"SLACK_WEBHOOK_URL": url},
    ))
    dispatcher = gw.app[CALLBACKS]
    async with aiohttp.ClientSession() as session:
        # The first request alone spends more than $0.00001; the keys service refuses the rest.
        assert await post_chat(session, gw.url, "house-model") == 200
        await dispatcher.check_budgets()
        for _ in range(2):
            assert await post_chat(session, gw.url, "house-model") == 429
            await dispatcher.check_budgets()
    await gw.server.close()
    text = "\n".join(receiver.texts)
    assert text.count("Budget reached") == 1
    assert "the gateway has spent $0.00" in text
    assert failed_counts(receiver.texts) == 2  # the refusals are failures too


def budget(spend: float, period: str = "p1", alias: str = "team-a") -> Budget:
    return Budget("key", alias.encode().hex(), alias, 10.0, spend, period)


def test_budget_levels_fire_once_per_crossing_per_period() -> None:
    watcher = BudgetWatcher()
    assert watcher.check([budget(9.0)]) == []  # first look learns, never alerts (restarts)
    assert watcher.check([budget(9.2)]) == []  # still within 85 %, already known
    assert [a.level for a in watcher.check([budget(9.6)])] == [0.95]
    assert watcher.check([budget(9.7)]) == []
    assert [a.level for a in watcher.check([budget(10.5)])] == [1.0]
    assert watcher.check([budget(11.0)]) == []
    # A new period re-arms every level; a jump past two levels says the highest once.
    assert watcher.check([budget(1.0, "p2")]) == []
    assert [a.level for a in watcher.check([budget(9.9, "p2")])] == [0.95]
    # A key created after start-up alerts on its first crossing.
    assert [a.label for a in watcher.check([budget(9.9, "p2"), budget(8.6, "p2", "new")])] == ["key new"]


def test_missing_webhook_url_is_a_config_error_naming_the_key(upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["litellm_settings"] = {"failure_callback": ["slack"]}
    with pytest.raises(ConfigError, match=r"litellm_settings\.failure_callback.*SLACK_WEBHOOK_URL"):
        create_app(parse_config(raw, env={}))
    raw["environment_variables"] = {"SLACK_WEBHOOK_URL": "hooks.slack.com/x"}
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK_URL: expected an http"):
        create_app(parse_config(raw, env={}))


def test_unknown_callbacks_warn_and_are_ignored(upstream_base, dead_base, caplog) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["litellm_settings"] = {"success_callback": ["langfuse", "prometheus"]}
    with caplog.at_level(logging.WARNING, logger="proxy.callbacks"):
        app = create_app(parse_config(raw, env={}))
    assert CALLBACKS not in app
    assert "'langfuse' is not supported" in caplog.text
    assert "prometheus" not in caplog.text
