"""Run-time model changes through Redis (general_settings.redis_url): a deployment added or a
model switched off on one gateway applies on another with its own keys.db, and the model
records survive Redis losing its data (seeded again from memory, like keys)."""

from __future__ import annotations

from redis.asyncio import Redis

from proxy.admin.routes import ADMIN

from .keys_helpers import admin, chat
from .redis_helpers import needs_redis
from .test_redis_outage import healthy, start_two
from .test_redis_shared import eventually

pytestmark = needs_redis


async def _status(gw, model):
    return (await chat(gw, gw.client.api_key, model))[0]


async def test_model_changes_are_shared_and_survive_a_redis_that_lost_its_data(
    redis_server, gateway_factory, upstream_base, dead_base, tmp_path
):
    a, b = await start_two(redis_server, gateway_factory, upstream_base, dead_base, tmp_path)
    status, body, _ = await admin(a, "POST", "/model/new", json={
        "model_name": "shared-added", "model_info": {"id": "shared-added-1"},
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream_base}})
    assert status == 200, body
    assert await eventually(lambda: _ok(b, "shared-added"), timeout=3)
    status, body, _ = await admin(b, "POST", "/model/update",
                                  json={"model_name": "house-model", "model_info": {"disabled": True}})
    assert status == 200, body
    assert await eventually(lambda: _gone(a, "house-model"), timeout=3)
    async with Redis.from_url(redis_server.url, decode_responses=True) as redis:
        stored = await _any_model_hash(redis)
    assert "shared-added-1" in stored and "api_key" not in str(stored)

    redis_server.stop(keep_data=False)
    redis_server.start()  # empty: the gateways seed it again from memory
    assert await eventually(lambda: healthy(a), timeout=10) and await eventually(lambda: healthy(b), timeout=10)
    # A gateway notices the restart at its next command or heartbeat, then seeds: poll for it
    # (healthy at once can also mean it has not noticed yet).
    async with Redis.from_url(redis_server.url, decode_responses=True) as redis:
        assert await eventually(lambda: _has_model(redis, "shared-added-1"), timeout=10)
    for gw in (a, b):
        assert await _status(gw, "shared-added") == 200 and await _status(gw, "house-model") == 404
        assert "shared-added-1" in gw.app[ADMIN].registry.models


async def _any_model_hash(redis) -> dict:
    for name in [k async for k in redis.scan_iter(match="*e:model")]:
        return await redis.hgetall(name)
    return {}


async def _has_model(redis, ident) -> bool:
    return ident in await _any_model_hash(redis)


async def _ok(gw, model) -> bool:
    return await _status(gw, model) == 200


async def _gone(gw, model) -> bool:
    return await _status(gw, model) == 404

