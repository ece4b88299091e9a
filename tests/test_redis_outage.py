"""Redis stopped mid-test: the gateways keep serving from memory with local counts, say so in
/health, /health/readiness and gateway.log, refuse admin changes plainly, and reconcile when
the same Redis comes back (with its data, or without: then it is seeded again)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from redis.asyncio import Redis

from proxy.admin.routes import ADMIN
from proxy.admin.store.redis_link import RedisLink
from proxy.demo.processes import free_port

from .keys_helpers import admin, chat, generate, settle
from .redis_helpers import needs_redis
from .test_redis_shared import eventually, redis_config

pytestmark = needs_redis


async def health(gw, path: str = "/health") -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(gw.url + path) as resp:
            return resp.status, await resp.json()


async def redis_spend(url: str, field: str) -> float:
    client = Redis.from_url(url, decode_responses=True)
    try:
        return float(await client.hget("shin:spend", field) or 0.0)
    finally:
        await client.aclose()


async def degraded(gw) -> bool:
    status, body = await health(gw)
    return status == 503


async def healthy(gw) -> bool:
    return (await health(gw))[0] == 200


def logged_cost(gateways, key_hash: str) -> float:
    return sum(gw.rows("SELECT TOTAL(cost) AS c FROM request_log WHERE key_hash = ?", (key_hash,))[0]["c"]
               for gw in gateways)


async def start_two(redis_server, gateway_factory, upstream_base, dead_base, tmp_path):
    raw = redis_config(upstream_base, dead_base, redis_server.url)
    gateways = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir(exist_ok=True)
        gateways.append(await gateway_factory(raw, db_path=tmp_path / name / "litellm.db"))
    return gateways


async def test_redis_stopped_mid_test_then_back_with_its_data(
    redis_server, gateway_factory, upstream_base, dead_base, tmp_path, gateway_log
):
    gateway_log.start({})
    a, b = await start_two(redis_server, gateway_factory, upstream_base, dead_base, tmp_path)
    made = await generate(a, key_alias="steady", rpm_limit=4, max_budget=100)
    key, key_hash = made["key"], made["token"]
    assert (await chat(a, key))[0] == 200
    await settle(a)

    redis_server.stop(keep_data=True)
    for _ in range(2):  # served, counted locally
        status, body, _ = await chat(a, key)
        assert status == 200, body
    status, body = await health(a)
    assert status == 503 and body["status"] == "degraded" and "Redis unreachable" in body["reason"]
    status, body = await health(a, "/health/readiness")
    assert status == 503 and "Redis" in body["reason"]
    assert (await health(a, "/health/liveliness"))[0] == 200
    assert await eventually(lambda: degraded(b), timeout=5)  # B notices by its own periodic check
    status, body, _ = await admin(a, "POST", "/key/generate", json={"key_alias": "during"})
    assert status == 503 and body["error"]["type"] == "service_unavailable", body
    status, body, _ = await chat(a, "sk-never-seen-by-this-host")  # cannot be checked: 503, not 401
    assert status == 503 and body["error"]["type"] == "service_unavailable", body
    await settle(a)  # spend waits in A's outbox
    redis_server.start()
    assert await eventually(lambda: healthy(a), timeout=10)
    assert await eventually(lambda: healthy(b), timeout=10)
    # Spend charged during the outage was added once; the rpm window holds A's three requests.
    assert await redis_spend(redis_server.url, f"key:{key_hash}") == pytest.approx(logged_cost([a, b], key_hash))
    assert logged_cost([a], key_hash) > 0
    assert (await chat(b, key))[0] == 200  # the 4th request in this minute
    status, body, _ = await chat(b, key)
    assert status == 429 and "rpm_limit of 4" in body["error"]["message"], body
    assert (await admin(a, "POST", "/key/generate", json={"key_alias": "after"}))[0] == 200

    text = gateway_log.stop()
    down = [line for line in text.splitlines() if "WARNING" in line and "Redis unreachable" in line]
    assert len(down) == 2, text  # once per gateway, not once per failed call
    assert len([line for line in text.splitlines() if "is back after" in line]) == 2, text


async def test_redis_restarted_without_its_data_is_seeded_again_from_memory(
    redis_server, gateway_factory, upstream_base, dead_base, tmp_path
):
    a, b = await start_two(redis_server, gateway_factory, upstream_base, dead_base, tmp_path)
    made = await generate(a, key_alias="survivor", max_budget=100)
    status, body, _ = await admin(a, "POST", "/team/new", json={"team_id": "kept"})
    assert status == 200, body
    key, key_hash = made["key"], made["token"]
    for gw in (a, b):
        assert (await chat(gw, key))[0] == 200
        await settle(gw)

    redis_server.stop(keep_data=False)
    assert (await chat(a, key))[0] == 200  # charged while Redis is gone
    await settle(a)
    redis_server.start()  # empty
    assert await eventually(lambda: healthy(a), timeout=10)
    assert await eventually(lambda: healthy(b), timeout=10)
    for gw in (a, b):
        assert (await chat(gw, key))[0] == 200, "the key survived in memory and was seeded again"
        await settle(gw)
    assert "kept" in b.app[ADMIN].registry.teams and key_hash in a.app[ADMIN].registry.keys
    stored = await redis_spend(redis_server.url, f"key:{key_hash}")
    assert stored == pytest.approx(logged_cost([a, b], key_hash))


async def test_a_gateway_started_while_redis_is_down_serves_its_keys_db_copy(
    redis_server, gateway_factory, upstream_base, dead_base, tmp_path
):
    raw = redis_config(upstream_base, dead_base, redis_server.url)
    (tmp_path / "a").mkdir()
    first = await gateway_factory(raw, db_path=tmp_path / "a" / "litellm.db")
    made = await generate(first, key_alias="remembered")
    assert (await chat(first, made["key"]))[0] == 200
    await first.server.close()  # writes keys.db, this host's copy

    redis_server.stop(keep_data=True)
    again = await gateway_factory(raw, db_path=tmp_path / "a" / "litellm.db")
    assert (await chat(again, made["key"]))[0] == 200
    assert await degraded(again)
    redis_server.start()
    assert await eventually(lambda: healthy(again), timeout=10)
    await settle(again)
    await asyncio.sleep(0)
    stored = await redis_spend(redis_server.url, f"key:{made['token']}")
    assert stored == pytest.approx(logged_cost([again], made["token"]))


async def test_the_warning_is_repeated_while_redis_stays_away(caplog):
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0", warn_every=0.05)
    try:
        assert not await link.connect()
        assert link.status().degraded and "Redis unreachable" in link.status().reason
        for _ in range(3):
            await asyncio.sleep(0.06)
            assert not await link.probe()
    finally:
        await link.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "proxy.redis" and r.levelname == "WARNING"]
    assert len([m for m in messages if m.startswith("Redis unreachable")]) == 1
    assert len([m for m in messages if m.startswith("Redis still unreachable")]) == 3
