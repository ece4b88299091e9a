"""Two gateways on one real Redis share keys, users, teams, budgets and rate limits."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from proxy.admin.records import Ref
from proxy.admin.routes import ADMIN
from proxy.state import ROUTER

from .keys_helpers import SLOW, admin, chat, generate, keys_config, settle
from .redis_helpers import needs_redis

pytestmark = needs_redis


def redis_config(upstream_base: str, dead_base: str, url: str, **litellm: object) -> dict:
    raw = keys_config(upstream_base, dead_base, **litellm)
    raw["general_settings"]["redis_url"] = url
    return raw


async def two_gateways(gateway_factory, upstream_base, dead_base, tmp_path, redis_server, **litellm):
    raw = redis_config(upstream_base, dead_base, redis_server.url, **litellm)
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir(exist_ok=True)
    a = await gateway_factory(raw, db_path=tmp_path / "a" / "litellm.db")
    b = await gateway_factory(raw, db_path=tmp_path / "b" / "litellm.db")
    return a, b


async def eventually(check, timeout: float = 1.0):
    """Poll `check` (async, returns truthy when done) until `timeout` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(0.02)


async def test_a_key_made_on_one_gateway_works_on_the_other_at_once(redis_server, gateway_factory, upstream_base, dead_base, tmp_path):
    a, b = await two_gateways(gateway_factory, upstream_base, dead_base, tmp_path, redis_server)
    made = await generate(a, key_alias="shared")
    status, body, _ = await chat(b, made["key"])
    assert status == 200, body
    assert b.app[ADMIN].registry.keys.get(made["token"]) is not None


async def test_a_key_made_or_revoked_on_one_gateway_reaches_the_other_within_a_second(
    redis_server, gateway_factory, upstream_base, dead_base, tmp_path
):
    a, b = await two_gateways(gateway_factory, upstream_base, dead_base, tmp_path, redis_server)
    made = await generate(a, key_alias="roaming")
    # No request needed: pub/sub tells B, which reloads.
    assert await eventually(lambda: _has(b, made["token"]))
    assert (await chat(b, made["key"]))[0] == 200

    status, body, _ = await admin(a, "POST", "/key/block", json={"key": made["key"]})
    assert status == 200, body
    assert await eventually(lambda: _refused(b, made["key"]))
    status, body, _ = await admin(a, "POST", "/key/unblock", json={"key": made["key"]})
    assert await eventually(lambda: _served(b, made["key"]))

    status, body, _ = await admin(b, "POST", "/key/delete", json={"keys": [made["key"]]})
    assert status == 200, body
    assert await eventually(lambda: _refused(a, made["key"]))
    assert made["token"] not in a.app[ADMIN].registry.keys


async def _has(gw, key_hash):
    return key_hash in gw.app[ADMIN].registry.keys


async def _refused(gw, key):
    status, body, _ = await chat(gw, key)
    return status == 401


async def _served(gw, key):
    return (await chat(gw, key))[0] == 200


async def test_users_teams_end_users_and_budget_tiers_are_shared(redis_server, gateway_factory, upstream_base, dead_base, tmp_path):
    a, b = await two_gateways(gateway_factory, upstream_base, dead_base, tmp_path, redis_server)
    for path, body in (("/team/new", {"team_id": "web", "max_budget": 5}),
                       ("/user/new", {"user_id": "ann", "rpm_limit": 7}),
                       ("/budget/new", {"budget_id": "free", "max_budget": 0.5}),
                       ("/end_user/new", {"user_id": "cust-1", "budget_id": "free"})):
        status, answer, _ = await admin(a, "POST", path, json=body)
        assert status == 200, (path, answer)
    registry = b.app[ADMIN].registry

    async def seen():
        return ("web" in registry.teams and "ann" in registry.users and "free" in registry.tiers
                and "cust-1" in registry.end_users)

    assert await eventually(seen)
    assert registry.users["ann"].rpm_limit == 7 and registry.end_users["cust-1"].tier.max_budget == 0.5
    # A key made on B for A's team and user: the alias is unique across both.
    status, body, _ = await admin(b, "POST", "/key/generate", json={"team_id": "web", "user_id": "ann", "key_alias": "k1"})
    assert status == 200, body
    status, body, _ = await admin(a, "POST", "/key/generate", json={"key_alias": "k1"})
    assert status == 400, body
    status, body, _ = await admin(a, "POST", "/team/new", json={"team_id": "web"})
    assert status == 400, body


async def test_two_gateways_exhaust_one_budget_together(redis_server, gateway_factory, upstream_base, dead_base, tmp_path):
    a, b = await two_gateways(gateway_factory, upstream_base, dead_base, tmp_path, redis_server)
    probe = await generate(a, key_alias="probe")
    status, _, headers = await chat(a, probe["key"])
    cost = float(headers["x-litellm-response-cost"])
    status, body, _ = await admin(a, "POST", "/team/new", json={"team_id": "ops", "max_budget": cost * 3.5})
    assert status == 200, body
    shared = await generate(a, key_alias="shared", team_id="ops", max_budget=cost * 2.5)
    key, key_hash = shared["key"], shared["token"]

    assert (await chat(a, key))[0] == 200
    assert (await chat(a, key))[0] == 200  # 2 × cost, charged by A
    await settle(a)
    # B never charged this key: the totals A stored reach it by pub/sub.
    assert await eventually(lambda: _spend_at_least(b, key_hash, cost * 1.99))
    assert (await chat(b, key))[0] == 200  # 2c < 2.5c: admitted; 3c now, charged by B
    await settle(b)
    assert await eventually(lambda: _spend_at_least(a, key_hash, cost * 2.99))
    for gw in (a, b):
        status, body, _ = await chat(gw, key)
        assert status == 429 and body["error"]["type"] == "budget_exceeded", body

    # Team budget: a second key of the team on B brings it to 4c > 3.5c; then A refuses it too.
    other = await generate(b, team_id="ops")
    assert (await chat(b, other["key"]))[0] == 200
    await settle(b)
    assert await eventually(lambda: _team_spend_at_least(a, "ops", cost * 3.99))
    status, body, _ = await chat(a, other["key"])
    assert status == 429 and "Team=ops" in body["error"]["message"]

    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        stored = float(await client.hget("shin:spend", f"key:{key_hash}"))
        team = float(await client.hget("shin:spend", "team:ops"))
    finally:
        await client.aclose()
    logged = sum(gw.rows("SELECT SUM(cost) AS c FROM request_log WHERE key_hash = ?", (key_hash,))[0]["c"] for gw in (a, b))
    assert stored == pytest.approx(logged) and stored == pytest.approx(3 * cost)
    assert team == pytest.approx(4 * cost)


async def _spend_at_least(gw, key_hash, value):
    rec = gw.app[ADMIN].registry.keys.get(key_hash)
    return rec is not None and rec.spend >= value


async def _team_spend_at_least(gw, team_id, value):
    rec = gw.app[ADMIN].registry.teams.get(team_id)
    return rec is not None and rec.spend >= value


async def test_two_gateways_respect_one_rpm_limit_together(redis_server, gateway_factory, upstream_base, dead_base, tmp_path):
    a, b = await two_gateways(gateway_factory, upstream_base, dead_base, tmp_path, redis_server)
    made = await generate(a, key_alias="rpm3", rpm_limit=3)
    for gw in (a, b, a):
        status, body, _ = await chat(gw, made["key"])
        assert status == 200, body
    for gw in (b, a):
        status, body, headers = await chat(gw, made["key"])
        assert status == 429 and body["error"]["type"] == "rate_limit_error", body
        assert "rpm_limit of 3" in body["error"]["message"] and int(headers["Retry-After"]) >= 1

    async def b_reports_all_three():  # /metrics' rate-limit use: every host's, read from Redis
        rows = b.app[ADMIN].rate_limit_states()
        return [r[6] for r in rows if r[2] == "rpm3" and r[4] == "requests"] == [3]

    assert await eventually(b_reports_all_three)
    # A key without limits never asks Redis for them (nothing stored under rl:).
    free = await generate(b, key_alias="free")
    assert (await chat(a, free["key"]))[0] == 200
    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        limited = [k async for k in client.scan_iter("shin:rl:*")]
    finally:
        await client.aclose()
    assert limited and all(made["token"] in k for k in limited)


async def test_parallel_requests_are_counted_across_gateways(redis_server, gateway_factory, upstream_base, dead_base, tmp_path):
    a, b = await two_gateways(gateway_factory, upstream_base, dead_base, tmp_path, redis_server)
    made = await generate(a, key_alias="one-at-a-time", max_parallel_requests=1)
    slow = asyncio.create_task(chat(a, made["key"], model=SLOW))
    assert await eventually(lambda: _in_flight(a, made["token"]), timeout=5)
    status, body, _ = await chat(b, made["key"])
    assert status == 429 and "max_parallel_requests of 1" in body["error"]["message"], body
    assert (await slow)[0] == 200
    assert await eventually(lambda: _served(b, made["key"]), timeout=5)


async def _in_flight(gw, key_hash):
    return gw.app[ADMIN].counter.in_flight(Ref("key", key_hash)) == 1


async def test_a_cooldown_started_on_one_gateway_is_kept_by_the_other(redis_server, gateway_factory, upstream_base, dead_base, tmp_path):
    raw = redis_config(upstream_base, dead_base, redis_server.url)
    raw["model_list"] += [
        {"model_name": "pair", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": dead_base}},
        {"model_name": "pair", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream_base}},
    ]
    raw["router_settings"] = {"allowed_fails": 0, "cooldown_time": 30}
    gateways = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        gateways.append(await gateway_factory(raw, db_path=tmp_path / name / "litellm.db"))
    a, b = gateways
    dead = next(t.deployment_id for t in a.app[ROUTER].deployments("pair") if t.api_base == dead_base)
    for _ in range(30):  # simple-shuffle: the dead deployment comes first about every other time
        reply = await a.client.chat.completions.create(model="pair", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices
        if a.app[ROUTER].state(dead).cooling():
            break
    assert a.app[ROUTER].state(dead).cooling()

    async def cooling_on_b():
        return b.app[ROUTER].state(dead).cooling()

    assert await eventually(cooling_on_b)
    assert not b.app[ROUTER].state(dead).cooldowns  # B's own count stays its own
    # While it cools, B sends every request to the live deployment, never the dead one.
    for _ in range(4):
        status, body, headers = await chat(b, (await generate(b))["key"], model="pair")
        assert status == 200 and headers["x-litellm-model-id"] != dead
    assert b.app[ROUTER].state(dead).failures == 0
