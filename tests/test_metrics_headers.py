"""Every LLM response names its log row, as the official openai SDK reads it (`_request_id`,
`.request_id` on errors), and tells the SDK when a retry is worth nothing."""

from __future__ import annotations

import aiohttp
import openai
import pytest

from proxy.fake_upstream import COUNTER
from proxy.state import ROUTER

from .conftest import MASTER_KEY
from .metrics_helpers import new_key

PROMPT = [{"role": "user", "content": "Trace me."}]


def client_for(gw, key: str, retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=retries, timeout=10)


async def test_a_completion_names_its_row_deployment_cost_and_overhead(gateway):
    raw = await gateway.client.chat.completions.with_raw_response.create(model="house-model", messages=PROMPT)
    completion = raw.parse()
    (row,) = gateway.rows()
    assert completion._request_id == row["request_id"]
    assert raw.headers["x-request-id"] == raw.headers["x-litellm-call-id"] == row["request_id"]
    target = gateway.app[ROUTER].deployments("house-model")[0]
    assert raw.headers["x-litellm-model-id"] == target.deployment_id
    assert raw.headers["x-litellm-model-group"] == "house-model"
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(row["cost"])
    overhead_ms = float(raw.headers["x-litellm-overhead-duration-ms"])
    assert 0 <= overhead_ms <= (row["latency"] - row["upstream_latency"]) * 1000 + 1
    # The upstream's rate-limit headers pass through as LiteLLM passes them.
    assert int(raw.headers["x-ratelimit-remaining-requests"]) > 0
    assert raw.headers["x-ratelimit-limit-tokens"] == "2000000"
    assert "x-litellm-key-spend" not in raw.headers  # the master key is not a virtual key


async def test_a_stream_names_its_row(gateway):
    async with gateway.client.chat.completions.with_streaming_response.create(
        model="house-model", messages=PROMPT, stream=True
    ) as response:
        async for _ in response.iter_lines():
            pass
        headers = response.headers
    (row,) = gateway.rows()
    assert headers["x-request-id"] == headers["x-litellm-call-id"] == row["request_id"]
    assert headers["x-litellm-model-group"] == "house-model"
    assert "x-ratelimit-remaining-tokens" in headers
    assert "x-litellm-overhead-duration-ms" not in headers  # not known before the stream ends


async def test_embeddings_name_their_row(gateway):
    raw = await gateway.client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="x")
    assert raw.parse()._request_id == gateway.rows()[0]["request_id"]


async def test_a_virtual_key_sees_its_spend(gateway):
    key = await new_key(gateway, key_alias="spender", max_budget=10.0)
    client = client_for(gateway, key)
    spends = []
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(model="house-model", messages=PROMPT)
        spends.append(float(raw.headers["x-litellm-key-spend"]))
    await client.close()
    costs = [r["cost"] for r in gateway.rows()]
    assert spends == pytest.approx([costs[0], costs[0] + costs[1]])  # this request included


@pytest.mark.parametrize(("model", "error", "status"), [
    ("no-such-model", openai.NotFoundError, 404),
    ("bad-request", openai.BadRequestError, 400),
])
async def test_errors_name_their_row(gateway, model, error, status):
    with pytest.raises(error) as info:
        await gateway.client.chat.completions.create(model=model, messages=PROMPT)
    (row,) = gateway.rows()
    assert row["status_code"] == status
    assert info.value.request_id == row["request_id"]
    assert info.value.response.headers["x-litellm-call-id"] == row["request_id"]


async def test_a_refused_key_still_names_its_row(gateway):
    client = client_for(gateway, "sk-not-a-key")
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="house-model", messages=PROMPT)
    await client.close()
    (row,) = gateway.rows()
    assert (row["status_code"], info.value.request_id) == (401, row["request_id"])


async def test_a_budget_429_is_not_retried(gateway, fake_upstream):
    key = await new_key(gateway, key_alias="tiny", max_budget=0.000001)
    client = client_for(gateway, key, retries=2)  # the SDK's default
    await client.chat.completions.create(model="house-model", messages=PROMPT)  # spends it all
    calls = fake_upstream.app[COUNTER][0]
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="house-model", messages=PROMPT)
    await client.close()
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert "retry-after" not in headers
    rows = gateway.rows()
    assert [r["status_code"] for r in rows] == [200, 429]  # one refusal: the SDK did not retry
    assert info.value.request_id == rows[1]["request_id"]
    assert fake_upstream.app[COUNTER][0] == calls


async def test_a_rate_limit_429_keeps_retry_after(gateway):
    key = await new_key(gateway, key_alias="one-a-minute", rpm_limit=1)
    client = client_for(gateway, key)
    await client.chat.completions.create(model="house-model", messages=PROMPT)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="house-model", messages=PROMPT)
    await client.close()
    headers = info.value.response.headers
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert "x-should-retry" not in headers  # worth retrying after Retry-After, as the SDK does


@pytest.mark.parametrize(("model", "status"), [("slow", 504), ("down", 502), ("broken", 503)])
async def test_gateway_failures_after_failover_are_final(gateway, fake_upstream, model, status):
    client = client_for(gateway, gateway.client.api_key, retries=2)  # the SDK's default
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model=model, messages=PROMPT)
    await client.close()
    assert info.value.status_code == status
    assert info.value.response.headers["x-should-retry"] == "false"
    rows = gateway.rows()
    assert len(rows) == 1 and rows[0]["request_id"] == info.value.request_id
    assert fake_upstream.app[COUNTER][0] == (0 if model == "down" else 1)  # one upstream call, not three



async def test_answers_without_a_row_carry_an_id_too(gateway):
    """Admin, health, metrics, the report and unknown paths log no row, yet every answer has
    the id headers (DESIGN: every response), each a fresh id, none a logged row's."""
    master = {"Authorization": f"Bearer {MASTER_KEY}"}
    seen = set()
    async with aiohttp.ClientSession() as http:
        for method, path, headers in (("GET", "/health/liveliness", {}), ("GET", "/metrics", {}),
                                      ("GET", "/key/list", master), ("GET", "/key/list", {}),
                                      ("GET", "/no/such/path", {}), ("GET", "/ui", {})):
            async with http.request(method, gateway.url + path, headers=headers,
                                    allow_redirects=False) as resp:
                rid = resp.headers.get("x-request-id")
                assert rid and len(rid) == 32 and int(rid, 16) >= 0, (path, resp.status)
                assert resp.headers["x-litellm-call-id"] == rid
                seen.add(rid)
    assert len(seen) == 6
    assert gateway.rows() == []
