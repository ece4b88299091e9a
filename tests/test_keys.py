"""Virtual keys enforced end to end: openai SDK / aiohttp → real gateway → real fake upstream."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import datetime

import openai
import pytest

from proxy.admin.routes import ADMIN
from proxy.server.auth import hash_key

from .keys_helpers import (
    PRICED,
    PROMPT,
    SLOW,
    admin,
    chat,
    generate,
    key_info,
    keys_config,
    sdk,
    settle,
    sleep_until,
)


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    return await gateway_factory(keys_config(upstream_base, dead_base))


async def test_tiny_budget_is_refused_after_a_few_requests(gw):
    key = await generate(gw, key_alias="ci-bot", user_id="ci", max_budget=0.00005)
    ok = 0
    async with sdk(gw, key["key"]) as client:
        with pytest.raises(openai.RateLimitError) as refused:
            for _ in range(10):
                await client.chat.completions.create(model=PRICED, messages=PROMPT)
                ok += 1
    assert 1 <= ok <= 3
    assert "Budget has been exceeded! Current cost: " in refused.value.message
    assert refused.value.body["message"].endswith(", Max budget: 5e-05 (key `ci-bot`)")
    assert (refused.value.body["type"], refused.value.body["code"]) == ("budget_exceeded", "429")
    info = await key_info(gw, key["key"])
    assert info["spend"] >= info["max_budget"]
    await settle(gw)
    rows = gw.rows("SELECT * FROM request_log WHERE key_hash = ? ORDER BY id", (hash_key(key["key"]),))
    assert [r["status_code"] for r in rows] == [200] * ok + [429]
    assert {r["key_alias"] for r in rows} == {"ci-bot"} and {r["user_id"] for r in rows} == {"ci"}
    assert rows[-1]["error_type"] == "budget_exceeded" and rows[-1]["cost"] == 0
    assert info["spend"] == pytest.approx(sum(r["cost"] for r in rows))


async def test_cost_header_is_what_the_key_is_charged(gw):
    key = await generate(gw)
    async with sdk(gw, key["key"]) as client:
        raw = await client.chat.completions.with_raw_response.create(model=PRICED, messages=PROMPT)
    charged = float(raw.headers["x-litellm-response-cost"])
    assert charged > 0
    assert (await key_info(gw, key["key"]))["spend"] == pytest.approx(charged)


async def test_model_allow_list(gw):
    key = await generate(gw, models=[PRICED])
    async with sdk(gw, key["key"]) as client:
        assert (await client.chat.completions.create(model=PRICED, messages=PROMPT)).choices
        with pytest.raises(openai.AuthenticationError) as denied:  # 401, as LiteLLM answers
            await client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
        assert [m.id async for m in client.models.list()] == [PRICED]
    error = denied.value.body
    assert "key not allowed to access model" in error["message"] and "gpt-4o-mini" in error["message"]
    assert (error["type"], error["param"], error["code"]) == ("key_model_access_denied", "model", "401")
    row = gw.rows()[-1]
    assert (row["status_code"], row["error_type"], row["model"]) == (401, "key_model_access_denied", "gpt-4o-mini")


async def test_unknown_deleted_and_expired_keys_get_401(gw, caplog):
    caplog.set_level(logging.WARNING, logger="proxy.auth")
    short = await generate(gw, key_alias="short-lived", duration="1s")
    doomed = await generate(gw, key_alias="doomed")
    assert (await chat(gw, doomed["key"]))[0] == 200
    status, body, _ = await admin(gw, "POST", "/key/delete", json={"keys": [doomed["key"]]})
    assert status == 200 and body == {"deleted_keys": [doomed["key"]]}
    await sleep_until(datetime.fromisoformat(short["expires"]).timestamp())

    for key, words in (("sk-never-issued-0000", "no such key"), (doomed["key"], "no such key"),
                       (short["key"], "Expired Key")):
        async with sdk(gw, key) as client:
            with pytest.raises(openai.AuthenticationError) as refused:
                await client.chat.completions.create(model=PRICED, messages=PROMPT)
        assert words in refused.value.message
        assert refused.value.body["type"] == "authentication_error"
    failures = [r.getMessage() for r in caplog.records if "auth failed" in r.getMessage()]
    assert len(failures) == 3 and "short-lived" in failures[2]


async def test_rpm_limit_answers_429_with_retry_after(gw):
    key = await generate(gw, rpm_limit=2)
    assert [(await chat(gw, key["key"]))[0] for _ in range(2)] == [200, 200]
    status, body, headers = await chat(gw, key["key"])
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert "rpm_limit of 2" in body["error"]["message"]
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_tpm_limit_counts_the_tokens_of_the_last_minute(gw):
    key = await generate(gw, tpm_limit=5)
    status, body, _ = await chat(gw, key["key"])
    assert status == 200 and body["usage"]["total_tokens"] > 5
    status, body, headers = await chat(gw, key["key"])
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert "tpm_limit of 5" in body["error"]["message"]
    assert 1 <= int(headers["Retry-After"]) <= 60
    other = await generate(gw)  # limits are per key
    assert (await chat(gw, other["key"]))[0] == 200


async def test_max_parallel_requests(gw):
    key = await generate(gw, max_parallel_requests=1)
    results = await asyncio.gather(*(chat(gw, key["key"], SLOW) for _ in range(3)))
    statuses = sorted(r[0] for r in results)
    assert statuses[0] == 200 and statuses[-1] == 429
    refused = next(r for r in results if r[0] == 429)
    assert refused[1]["error"]["type"] == "rate_limit_error" and refused[2]["Retry-After"] == "1"
    # The slot is released when the request ends, failed or not.
    assert (await chat(gw, key["key"], SLOW))[0] == 200


async def test_budget_resets_after_its_duration(gw):
    key = await generate(gw, max_budget=1e-9, budget_duration="2s")
    assert (await chat(gw, key["key"]))[0] == 200
    status, body, _ = await chat(gw, key["key"])
    assert status == 429 and body["error"]["type"] == "budget_exceeded"
    info = await key_info(gw, key["key"])
    assert info["budget_duration"] == "2s" and info["spend"] > 0
    await sleep_until(datetime.fromisoformat(info["budget_reset_at"]).timestamp())
    status, body, _ = await chat(gw, key["key"])
    assert status == 200
    after = await key_info(gw, key["key"])
    assert after["spend"] == pytest.approx(_last_success_cost(gw))
    assert after["budget_reset_at"] > info["budget_reset_at"]


def _last_success_cost(gw) -> float:
    return gw.rows("SELECT cost FROM request_log WHERE status_code = 200 ORDER BY id DESC LIMIT 1")[0]["cost"]


async def test_concurrent_requests_against_one_budget_overshoot_at_most_the_in_flight(gw):
    probe = await generate(gw)
    status, _, headers = await chat(gw, probe["key"], SLOW)
    cost = float(headers["x-litellm-response-cost"])
    key = await generate(gw, max_budget=cost * 1.5)
    results = await asyncio.gather(*(chat(gw, key["key"], SLOW) for _ in range(8)))
    charged = [float(r[2]["x-litellm-response-cost"]) for r in results if r[0] == 200]
    assert charged and all(r[0] in (200, 429) for r in results)
    info = await key_info(gw, key["key"])
    assert info["spend"] == pytest.approx(sum(charged))
    # Every admitted request saw spend < max_budget; the overshoot is bounded by the 8 in flight.
    assert info["spend"] <= info["max_budget"] + 8 * cost
    assert (await chat(gw, key["key"]))[0] == 429
    await settle(gw)
    logged = gw.rows("SELECT SUM(cost) AS c FROM request_log WHERE key_hash = ?", (hash_key(key["key"]),))[0]["c"]
    conn = sqlite3.connect(gw.app[ADMIN].path)
    try:
        stored = conn.execute("SELECT spend FROM keys WHERE key_hash = ?", (hash_key(key["key"]),)).fetchone()[0]
    finally:
        conn.close()
    assert stored == pytest.approx(logged) == pytest.approx(info["spend"])


async def test_global_budget_caps_the_whole_gateway(gateway_factory, upstream_base, dead_base):
    gw = await gateway_factory(keys_config(upstream_base, dead_base, max_budget=1e-9, budget_duration="30d"))
    async with sdk(gw, gw.client.api_key) as master:
        await master.chat.completions.create(model=PRICED, messages=PROMPT)
        with pytest.raises(openai.RateLimitError) as refused:
            await master.chat.completions.create(model=PRICED, messages=PROMPT)
    message = refused.value.body["message"]
    assert message.startswith("Budget has been exceeded! Current cost: ")
    assert message.endswith(", Max budget: 1e-09 (the gateway's litellm_settings.max_budget)")
    assert refused.value.body["code"] == "429"
    key = await generate(gw)  # a virtual key with no budget of its own is still capped
    status, body, _ = await chat(gw, key["key"])
    assert status == 429 and body["error"]["type"] == "budget_exceeded"
