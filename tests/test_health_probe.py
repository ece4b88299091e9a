"""/health keeps the guide's shape; the master key adds LiteLLM's per-deployment probe;
liveliness, liveness and readiness answer as LiteLLM's do."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from proxy.fake_upstream import SEEN
from proxy.state import WRITER

from .conftest import MASTER_KEY

PUBLIC = {"status", "uptime", "version", "log_backlog"}


async def get(gw, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.url + path, headers=headers, params=params) as resp:
            return resp.status, await resp.json()


async def test_plain_health_never_probes(gateway, fake_upstream):
    status, body = await get(gateway, "/health")
    assert status == 200 and set(body) == PUBLIC and body["status"] == "healthy"
    status, body = await get(gateway, "/health", token="sk-wrong")
    assert status == 200 and set(body) == PUBLIC
    assert len(fake_upstream.app[SEEN]) == 0  # no provider was called


async def test_master_key_probes_every_deployment_once_per_interval(gateway, fake_upstream):
    status, body = await get(gateway, "/health", token=MASTER_KEY)
    assert status == 200 and body["status"] == "healthy"
    healthy = {e["model_name"] for e in body["healthy_endpoints"]}
    unhealthy = {e["model_name"]: e["error"] for e in body["unhealthy_endpoints"]}
    assert healthy == {"gpt-4o-mini", "text-embedding-3-small", "local-llama", "house-model", "nousage", "cutoff"}
    assert set(unhealthy) == {"broken", "bad-request", "slow", "down"}
    assert unhealthy["broken"].startswith("HTTP 503") and unhealthy["slow"].startswith("Timeout")
    assert unhealthy["down"].startswith("Unreachable")
    assert (body["healthy_count"], body["unhealthy_count"]) == (6, 4)
    assert "sk-upstream-secret" not in str(body) and not any("api_key" in e for e in body["healthy_endpoints"])
    # The cheapest question per mode: one token of chat, one word to embed.
    sent = {b["model"]: (path, b) for path, b in fake_upstream.app[SEEN]}
    assert sent["gpt-4o-mini"][0] == "/v1/chat/completions" and sent["gpt-4o-mini"][1]["max_tokens"] == 1
    assert sent["text-embedding-3-small"][0] == "/v1/embeddings" and "max_tokens" not in sent["text-embedding-3-small"][1]
    probes = len(fake_upstream.app[SEEN])

    again = (await get(gateway, "/health", token=MASTER_KEY))[1]
    assert again["healthy_count"] == 6 and len(fake_upstream.app[SEEN]) == probes  # cached

    status, one = await get(gateway, "/health", token=MASTER_KEY, model="gpt-4o-mini")
    assert status == 200 and (one["healthy_count"], one["unhealthy_count"]) == (1, 0)
    assert len(fake_upstream.app[SEEN]) == probes + 1
    status, missing = await get(gateway, "/health", token=MASTER_KEY, model="nope")
    assert status == 404 and missing["error"]["code"] == "model_not_found"
    # Probes are not requests: nothing was logged.
    assert gateway.rows() == []


async def test_probe_results_expire_after_the_interval(gateway_factory, upstream_base, dead_base, fake_upstream):
    from .conftest import default_raw_config

    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"] = raw["model_list"][:1]
    raw["general_settings"]["health_check_interval"] = 0.2
    gw = await gateway_factory(raw)
    await get(gw, "/health", token=MASTER_KEY)
    await asyncio.sleep(0.3)
    await get(gw, "/health", token=MASTER_KEY)
    assert len(fake_upstream.app[SEEN]) == 2


async def test_background_health_checks(gateway_factory, upstream_base, dead_base, fake_upstream):
    from .conftest import default_raw_config

    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"] = raw["model_list"][:2]
    raw["general_settings"].update(background_health_checks=True, health_check_interval=300)
    gw = await gateway_factory(raw)
    for _ in range(100):
        if len(fake_upstream.app[SEEN]) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(fake_upstream.app[SEEN]) == 2  # probed without anyone asking
    body = (await get(gw, "/health", token=MASTER_KEY))[1]
    assert body["healthy_count"] == 2 and len(fake_upstream.app[SEEN]) == 2


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/liveness"])
async def test_liveness(gateway, path):
    assert await get(gateway, path) == (200, "I'm alive!")


async def test_readiness_fails_when_the_request_log_cannot_be_written(gateway):
    status, body = await get(gateway, "/health/readiness")
    assert status == 200
    assert body["status"] == "connected" and body["db"] == "connected" and body["litellm_version"]
    await asyncio.to_thread(gateway.app[WRITER].stop)  # the writer is gone: rows can't be written
    status, body = await get(gateway, "/health/readiness")
    assert status == 503 and body["status"] == "unhealthy" and "writer" in body["reason"]
