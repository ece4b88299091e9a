"""GET /metrics on the real gateway after real traffic, parsed with prometheus-client's parser."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import MASTER_KEY, default_raw_config


async def scrape(url: str, token: str | None = MASTER_KEY) -> dict[str, list[Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/metrics", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(families: dict[str, list[Any]], sample_name: str, **labels: str) -> float:
    family = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    family = family.removesuffix("_bucket")
    return sum(
        s.value
        for s in families.get(family, [])
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_counts_match_the_requests_sent(gateway) -> None:
    for i in range(5):
        await gateway.client.chat.completions.create(
            model="house-model", messages=[{"role": "user", "content": f"hello {i}"}]
        )
    stream = await gateway.client.chat.completions.create(
        model="house-model", messages=[{"role": "user", "content": "stream please"}], stream=True
    )
    async for _ in stream:
        pass
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            await gateway.client.chat.completions.create(
                model="broken", messages=[{"role": "user", "content": "x"}]
            )
    with pytest.raises(openai.NotFoundError):
        await gateway.client.chat.completions.create(
            model="no-such-<model>", messages=[{"role": "user", "content": "x"}]
        )

    rows = gateway.rows()  # flushes the writer first, so rows_written is final
    assert len(rows) == 10
    m = await scrape(gateway.url)
    assert value(m, "litellm_requests_metric_total", model="house-model", status_code="200",
                 api_key_alias="master") == 6
    assert value(m, "litellm_requests_metric_total", model="broken", status_code="503") == 3
    # Client text never becomes a label value: an unknown model is counted as "other".
    assert value(m, "litellm_requests_metric_total", model="other", status_code="404") == 1
    assert all("<" not in s.labels.get("model", "") for f in m.values() for s in f)
    assert value(m, "litellm_proxy_failed_requests_metric_total") == 4

    house = [r for r in rows if r["model"] == "house-model"]
    prompt = sum(r["prompt_tokens"] for r in house)
    completion = sum(r["completion_tokens"] for r in house)
    assert value(m, "litellm_input_tokens_metric_total", model="house-model") == prompt
    assert value(m, "litellm_output_tokens_metric_total", model="house-model") == completion
    assert value(m, "litellm_total_tokens_metric_total", model="house-model") == prompt + completion
    assert value(m, "litellm_spend_metric_total", model="house-model") == pytest.approx(
        sum(r["cost"] for r in house)
    )
    assert value(m, "litellm_request_total_latency_metric_count", model="house-model") == 6
    assert value(m, "litellm_request_total_latency_metric_sum", model="house-model") == pytest.approx(
        sum(r["latency"] for r in house), rel=1e-3
    )
    assert value(m, "litellm_llm_api_latency_metric_count", model="house-model") == 6
    assert value(m, "litellm_overhead_latency_metric_count", model="house-model") == 6
    assert value(m, "litellm_llm_api_time_to_first_token_metric_count", model="house-model") == 1
    # The +Inf bucket holds every observation.
    assert value(m, "litellm_request_total_latency_metric_bucket", model="broken", le="+Inf") == 3
    assert value(m, "shin_in_flight_requests") == 0
    assert value(m, "shin_request_log_rows_written_total") == 10


async def test_in_flight_counts_requests_waiting_on_the_upstream(gateway_factory, upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append(
        {"model_name": "slowish", "litellm_params": {"model": "openai/slow-1", "api_base": upstream_base}}
    )
    gw = await gateway_factory(raw)
    tasks = [
        asyncio.create_task(gw.client.chat.completions.create(
            model="slowish", messages=[{"role": "user", "content": str(i)}]))
        for i in range(3)
    ]
    for _ in range(100):  # wait (bounded) until all three are admitted
        m = await scrape(gw.url)
        if value(m, "shin_in_flight_requests") == 3:
            break
        await asyncio.sleep(0.02)
    assert value(m, "shin_in_flight_requests") == 3
    await asyncio.gather(*tasks)
    m = await scrape(gw.url)
    assert value(m, "shin_in_flight_requests") == 0
    assert value(m, "litellm_requests_metric_total", model="slowish") == 3


async def test_metrics_auth_requires_the_master_key(gateway_factory, upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["metrics_auth"] = True
    gw = await gateway_factory(raw)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gw.url}/metrics") as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["type"] == "authentication_error"
        async with session.get(f"{gw.url}/metrics", headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
    m = await scrape(gw.url, MASTER_KEY)
    assert "litellm_requests_metric" in m


async def test_metrics_open_by_default(gateway) -> None:
    m = await scrape(gateway.url, token=None)
    assert "litellm_spend_metric" in m


async def test_remaining_budget_per_key_read_at_scrape_time(gateway) -> None:
    m = await scrape(gateway.url)
    assert value(m, "litellm_remaining_api_key_budget_metric") == 0  # no key has a budget yet
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{gateway.url}/key/generate", json={"key_alias": "team-a", "max_budget": 1.0},
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            key = (await resp.json())["key"]
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    await client.chat.completions.create(model="house-model", messages=[{"role": "user", "content": "hi"}])
    await client.close()
    (row,) = gateway.rows("SELECT cost, key_hash FROM request_log WHERE key_alias = 'team-a'")
    assert row["cost"] > 0
    m = await scrape(gateway.url)
    assert value(m, "litellm_remaining_api_key_budget_metric", api_key_alias="team-a") == pytest.approx(
        1.0 - row["cost"]
    )
    assert value(m, "litellm_api_key_max_budget_metric", api_key_alias="team-a") == 1.0
    (sample,) = m["litellm_remaining_api_key_budget_metric"]
    assert row["key_hash"].startswith(sample.labels["hashed_api_key"])
    assert key not in str(m)  # never the key itself


async def test_remaining_gateway_budget(gateway_factory, upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["litellm_settings"] = {"max_budget": 5.0, "budget_duration": "30d"}
    gw = await gateway_factory(raw)
    await gw.client.chat.completions.create(model="house-model", messages=[{"role": "user", "content": "hi"}])
    (row,) = gw.rows("SELECT cost FROM request_log")
    m = await scrape(gw.url)
    assert value(m, "shin_remaining_gateway_budget_metric") == pytest.approx(5.0 - row["cost"])


async def test_two_apps_in_one_process_keep_separate_counts(gateway_factory, tmp_path) -> None:
    first = await gateway_factory(db_path=tmp_path / "a.db")
    second = await gateway_factory(db_path=tmp_path / "b.db")
    await first.client.chat.completions.create(model="house-model", messages=[{"role": "user", "content": "a"}])
    assert value(await scrape(first.url), "litellm_requests_metric_total") == 1
    assert value(await scrape(second.url), "litellm_requests_metric_total") == 0
