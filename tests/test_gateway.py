"""The gateway end to end: the official openai SDK → real proxy → real fake upstream → SQLite."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import openai
import pytest
from genai_prices import Usage, calc_price

from proxy.server.auth import hash_key

from .conftest import MASTER_KEY

PROMPT = [{"role": "user", "content": "How much did we spend on tokens yesterday?"}]


def price(model: str, prompt: int, completion: int) -> float:
    return float(calc_price(Usage(input_tokens=prompt, output_tokens=completion), model, provider_id="openai").total_price)


async def test_chat_completion_is_logged_with_tokens_and_cost(gateway):
    reply = await gateway.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, user="alice")
    assert reply.choices[0].message.content
    rows = gateway.rows()
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == "gpt-4o-mini"
    assert row["status_code"] == 200
    assert row["user_id"] == "alice"
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
        reply.usage.total_tokens,
    )
    assert row["cost"] == pytest.approx(price("gpt-4o-mini", reply.usage.prompt_tokens, reply.usage.completion_tokens))
    assert row["cost"] > 0 and row["cost_status"] == "priced"
    assert row["latency"] > 0 and row["upstream_latency"] > 0
    assert row["stream"] == 0 and row["tokens_estimated"] == 0
    assert json.loads(row["messages"]) == PROMPT
    assert row["response"] == reply.choices[0].message.content
    assert row["endpoint"] == "/v1/chat/completions"
    assert row["key_hash"] == hash_key(MASTER_KEY) and MASTER_KEY not in dict(row).values()
    assert row["provider"] == "openai" and row["upstream_model"] == "openai/gpt-4o-mini"
    # SQLite's own datetime format, so the guide's datetime('now', ...) comparisons work.
    assert len(row["timestamp"]) == 23 and row["timestamp"][10] == " "


async def test_cost_header_matches_logged_cost(gateway):
    raw = await gateway.client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=PROMPT)
    header = float(raw.headers["x-litellm-response-cost"])
    assert header == pytest.approx(gateway.rows()[0]["cost"])


async def test_stream_without_usage_hides_the_usage_we_asked_for(gateway):
    stream = await gateway.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # The client asked for no usage: no usage-only chunk, no usage field on any chunk.
    assert all(c.choices for c in chunks)
    assert all(getattr(c, "usage", None) is None for c in chunks)
    assert all("usage" not in (c.model_extra or {}) for c in chunks)
    row = gateway.rows()[0]
    assert row["stream"] == 1 and row["status_code"] == 200
    assert row["response"] == text
    assert row["completion_tokens"] == len(text.split())  # the fake emits one token per word
    assert row["tokens_estimated"] == 0 and row["cost"] > 0
    assert 0 < row["time_to_first_token"] <= row["latency"]


async def test_stream_with_usage_passes_it_through(gateway):
    stream = await gateway.client.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    row = gateway.rows()[0]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)


async def test_stream_is_relayed_byte_for_byte_when_usage_requested(gateway, upstream_base):
    body = {"model": "gpt-4o-mini", "messages": PROMPT, "stream": True, "stream_options": {"include_usage": True}}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {MASTER_KEY}"}) as via_proxy:
            proxied = await via_proxy.read()
        direct_body = dict(body, model="gpt-4o-mini")
        async with http.post(f"{upstream_base}/chat/completions", json=direct_body) as direct:
            straight = await direct.read()
    assert proxied == straight


async def test_embeddings_and_completions(gateway):
    emb = await gateway.client.embeddings.create(model="text-embedding-3-small", input=["one", "two three"])
    assert len(emb.data) == 2
    comp = await gateway.client.completions.create(model="gpt-4o-mini", prompt="Say hi")
    assert comp.choices[0].text
    rows = gateway.rows()
    assert [r["endpoint"] for r in rows] == ["/v1/embeddings", "/v1/completions"]
    assert rows[0]["prompt_tokens"] == emb.usage.prompt_tokens and rows[0]["cost"] > 0
    assert rows[1]["completion_tokens"] == comp.usage.completion_tokens


async def test_models_lists_configured_names(gateway):
    models = await gateway.client.models.list()
    assert "gpt-4o-mini" in {m.id for m in models.data}


async def test_health(gateway):
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/health") as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["status"] == "healthy" and body["version"] and body["uptime"] >= 0


async def test_unpriced_config_priced_and_estimated(gateway):
    await gateway.client.chat.completions.create(model="local-llama", messages=PROMPT)
    reply = await gateway.client.chat.completions.create(model="house-model", messages=PROMPT)
    await gateway.client.chat.completions.create(model="nousage", messages=PROMPT)
    unpriced, house, estimated = gateway.rows()
    assert unpriced["cost"] == 0 and unpriced["cost_status"] == "unpriced" and unpriced["total_tokens"] > 0
    expected = reply.usage.prompt_tokens * 1e-6 + reply.usage.completion_tokens * 2e-6
    assert house["cost"] == pytest.approx(expected) and house["cost_status"] == "config"
    assert estimated["tokens_estimated"] == 1 and estimated["completion_tokens"] > 0


async def test_requests_spread_across_deployments(gateway_factory, upstream_base, aiohttp_server):
    """simple-shuffle, LiteLLM's default: random picks, so 30 requests reach both (a miss is
    a 2**-29 chance)."""
    from proxy.fake_upstream import create_fake_app

    second = await aiohttp_server(create_fake_app())
    bases = [upstream_base, str(second.make_url("/v1"))]
    raw = {
        "model_list": [
            {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": b}}
            for b in bases
        ],
        "general_settings": {"master_key": MASTER_KEY, "log_file": None},
    }
    gw = await gateway_factory(raw)
    for _ in range(30):
        await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    used = [r["api_base"] for r in gw.rows()]
    assert sorted(set(used)) == sorted(bases)


async def test_privacy_settings(gateway_factory, upstream_base, dead_base):
    from .conftest import default_raw_config

    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["store_prompts"] = False
    gw = await gateway_factory(raw)
    await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    row = gw.rows()[0]
    assert row["messages"] is None and row["response"] is None and row["total_tokens"] > 0

    raw["general_settings"].update(store_prompts=True, max_stored_chars=20)
    gw2 = await gateway_factory(raw, db_path=gw.db_path.with_name("capped.db"))
    await gw2.client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 500}])
    row = gw2.rows()[0]
    assert row["messages"].startswith('[{"role": "user", "') and len(row["messages"]) < 40


async def test_writer_stalled_does_not_delay_responses(gateway):
    """Hold the database's write lock for the whole burst: every response still arrives while
    no row can be written, and all rows land once the lock is released."""
    import sqlite3

    await gateway.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)  # warm up
    gateway.flush()
    blocker = sqlite3.connect(gateway.db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        replies = await asyncio.gather(
            *(gateway.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT) for _ in range(25))
        )
        assert len(replies) == 25
        # All 25 answered, yet none of their rows could have been committed.
        assert blocker.execute("SELECT COUNT(*) FROM request_log").fetchone()[0] == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert len(gateway.rows()) == 26


async def test_client_ip_behind_a_trusted_reverse_proxy(gateway_factory, upstream_base, dead_base):
    from .conftest import default_raw_config

    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["trusted_proxies"] = ["127.0.0.1"]
    gw = await gateway_factory(raw)
    body = {"model": "gpt-4o-mini", "messages": PROMPT}
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with aiohttp.ClientSession() as http:
        for forwarded in ("203.0.113.7", "6.6.6.6, 203.0.113.8", None):
            extra = {"X-Forwarded-For": forwarded} if forwarded else {}
            async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers={**headers, **extra}) as resp:
                assert resp.status == 200
    # the nearest hop our proxy appended wins over whatever the client claimed on the left
    assert [r["client_ip"] for r in gw.rows()] == ["203.0.113.7", "203.0.113.8", "127.0.0.1"]


async def test_forwarded_for_ignored_from_untrusted_peers(gateway):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": PROMPT},
                             headers={"Authorization": f"Bearer {MASTER_KEY}", "X-Forwarded-For": "203.0.113.9"}) as resp:
            assert resp.status == 200
    assert gateway.rows()[0]["client_ip"] == "127.0.0.1"


async def test_a_dead_deployment_fails_over_to_the_next(gateway_factory, upstream_base, dead_base):
    # weight 0: the live deployment is never picked first, so every request meets the dead one.
    raw = {
        "model_list": [
            {"model_name": "gpt-4o-mini",
             "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": base, "weight": weight}}
            for base, weight in ((dead_base, 1), (upstream_base, 0))
        ],
        "router_settings": {"cooldown_time": 0},  # no cooldown: the dead one stays in turn
        "general_settings": {"master_key": MASTER_KEY, "log_file": None},
    }
    gw = await gateway_factory(raw)
    for _ in range(4):
        await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert {(r["status_code"], r["api_base"], r["attempts"]) for r in gw.rows()} == {(200, upstream_base, 2)}

    raw["litellm_settings"] = {"num_retries": 0}  # LiteLLM's setting: no second deployment
    strict = await gateway_factory(raw, db_path=gw.db_path.with_name("strict.db"))
    with pytest.raises(openai.APIStatusError) as info:
        await strict.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert info.value.status_code == 502
    row = strict.rows()[0]
    assert (row["status_code"], row["api_base"], row["attempts"]) == (502, dead_base, 1)
