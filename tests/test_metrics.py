"""GET /metrics on the real gateway after real traffic, parsed with prometheus-client's parser:
LiteLLM's names, labels and buckets, who asked, bounded labels, budgets."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import openai
import pytest

from proxy.callbacks import CALLBACKS

from .conftest import MASTER_KEY, default_raw_config
from .metrics_helpers import label_values, new_key, post, samples, scrape, value

PROMPT = [{"role": "user", "content": "hello"}]
# LiteLLM's LATENCY_BUCKETS (litellm/types/integrations/prometheus.py) and prometheus-client's
# defaults, which LiteLLM leaves litellm_deployment_latency_per_output_token with.
LITELLM_BUCKETS = [
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0,
    180.0, 240.0, 300.0, float("inf"),
]
CLIENT_DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, float("inf")]


async def test_counts_match_the_requests_sent(gateway) -> None:
    for i in range(5):
        await gateway.client.chat.completions.create(model="house-model", messages=[{"role": "user", "content": f"hello {i}"}])
    stream = await gateway.client.chat.completions.create(model="house-model", messages=PROMPT, stream=True)
    async for _ in stream:
        pass
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            await gateway.client.chat.completions.create(model="broken", messages=PROMPT)
    with pytest.raises(openai.NotFoundError):
        await gateway.client.chat.completions.create(model="no-such-<model>", messages=PROMPT)

    rows = gateway.rows()  # flushes the writer first, so rows_written is final
    assert len(rows) == 10
    m = await scrape(gateway.url)
    total = "litellm_proxy_total_requests_metric_total"
    assert value(m, total, requested_model="house-model", status_code="200", api_key_alias="master",
                 route="/v1/chat/completions") == 6
    assert value(m, total, requested_model="broken", status_code="503") == 3
    # Client text never becomes a label value: a model nothing serves is "other".
    assert value(m, total, requested_model="other", status_code="404") == 1
    assert all("<" not in v for f in m.values() for s in f for v in s.labels.values())
    failed = "litellm_proxy_failed_requests_metric_total"
    assert value(m, failed) == 4
    assert value(m, failed, requested_model="broken", exception_status="503", exception_class="ServiceUnavailableError") == 3
    assert value(m, failed, requested_model="other", exception_status="404", exception_class="NotFoundError") == 1

    # `model` is the model routed to, as configured; the deprecated counters keep counting.
    assert value(m, "litellm_requests_metric_total", model="openai/house-model") == 6
    assert value(m, "litellm_requests_metric_total") == 10
    assert value(m, "litellm_llm_api_failed_requests_metric_total", model="openai/error-503") == 3
    assert value(m, "litellm_llm_api_failed_requests_metric_total") == 3  # the 404 was never admitted

    house = [r for r in rows if r["model"] == "house-model"]
    prompt = sum(r["prompt_tokens"] for r in house)
    completion = sum(r["completion_tokens"] for r in house)
    labels = {"model": "openai/house-model", "requested_model": "house-model"}
    assert value(m, "litellm_input_tokens_metric_total", **labels) == prompt
    assert value(m, "litellm_output_tokens_metric_total", **labels) == completion
    assert value(m, "litellm_total_tokens_metric_total", **labels) == prompt + completion
    assert value(m, "litellm_total_tokens_total", **labels) == prompt + completion  # the earlier name
    assert value(m, "litellm_spend_metric_total", model="openai/house-model") == pytest.approx(sum(r["cost"] for r in house))

    timed = {"requested_model": "house-model", "model": "openai/house-model"}
    assert value(m, "litellm_request_total_latency_metric_count", **timed) == 6
    assert value(m, "litellm_request_total_latency_metric_sum", **timed) == pytest.approx(sum(r["latency"] for r in house), rel=1e-3)
    assert value(m, "litellm_llm_api_latency_metric_count", **timed) == 6
    assert value(m, "litellm_llm_api_time_to_first_token_metric_count", **timed) == 1
    assert value(m, "litellm_overhead_latency_metric_count", model_group="house-model", litellm_model_name="openai/house-model") == 6
    # The three 503s reached an upstream and are timed; the 404 was refused before: counted only.
    assert value(m, "litellm_request_total_latency_metric_count", requested_model="broken") == 3
    assert value(m, "litellm_request_total_latency_metric_count") == 9
    assert value(m, "litellm_request_queue_time_seconds_count") == 9  # admitted requests
    assert value(m, "shin_in_flight_requests") == 0
    assert value(m, "litellm_in_flight_requests") >= 1  # the scrape itself, at least
    assert value(m, "shin_request_log_rows_written_total") == 10


async def test_histograms_use_litellms_bucket_layouts(gateway) -> None:
    await gateway.client.chat.completions.create(model="house-model", messages=PROMPT)
    m = await scrape(gateway.url)
    for name in ("litellm_request_total_latency_metric", "litellm_llm_api_latency_metric",
                 "litellm_overhead_latency_metric", "litellm_request_queue_time_seconds"):
        bounds = sorted({float(s.labels["le"]) for s in samples(m, name + "_bucket")})
        assert bounds == LITELLM_BUCKETS, name
    bounds = sorted({float(s.labels["le"]) for s in samples(m, "litellm_deployment_latency_per_output_token_bucket")})
    assert bounds == CLIENT_DEFAULT_BUCKETS


async def test_fast_refusals_are_counted_not_timed(gateway) -> None:
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="house-model", messages=PROMPT)
    await client.close()
    m = await scrape(gateway.url)
    assert value(m, "litellm_proxy_total_requests_metric_total", status_code="401", requested_model="house-model") == 1
    assert value(m, "litellm_proxy_failed_requests_metric_total", exception_class="AuthenticationError") == 1
    assert value(m, "litellm_request_total_latency_metric_count") == 0
    assert value(m, "litellm_request_queue_time_seconds_count") == 0


async def test_who_asked_labels_a_virtual_keys_requests(gateway_factory, upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append({"model_name": "reasoning-model", "litellm_params": {
        "model": "openai/cached-reasoning", "api_base": upstream_base, "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
    gateway = await gateway_factory(raw)
    assert (await post(gateway, "/team/new", {"team_id": "team-a", "team_alias": "Team A"}))[0] == 200
    key = await new_key(gateway, key_alias="checkout", user_id="alice", team_id="team-a",
                        max_budget=1.0, budget_duration="30d")
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    await client.chat.completions.create(model="house-model", messages=PROMPT, user="customer-42")
    stream = await client.chat.completions.create(model="reasoning-model", messages=PROMPT, stream=True, user="customer-42")
    async for _ in stream:
        pass
    await client.close()
    (row, streamed) = gateway.rows("SELECT * FROM request_log ORDER BY id")
    who = {"end_user": "customer-42", "hashed_api_key": row["key_hash"][:12], "api_key_alias": "checkout",
           "team": "team-a", "team_alias": "Team A", "user": "alice"}
    m = await scrape(gateway.url)
    for name in ("litellm_proxy_total_requests_metric_total", "litellm_requests_metric_total",
                 "litellm_spend_metric_total", "litellm_total_tokens_metric_total",
                 "litellm_input_tokens_metric_total", "litellm_output_tokens_metric_total"):
        found = samples(m, name)
        assert found and all(s.labels | who == s.labels for s in found), name
    assert value(m, "litellm_proxy_total_requests_metric_total", **who) == 2
    assert value(m, "litellm_spend_metric_total", **who) == pytest.approx(row["cost"] + streamed["cost"])
    assert value(m, "litellm_proxy_total_requests_metric_total", **who, requested_model="house-model") == 1
    # Cached and reasoning tokens, as the upstream's usage details report them.
    assert streamed["cached_tokens"] > 0 and streamed["reasoning_tokens"] > 0
    reasoning = {"api_key_alias": "checkout", "model": "openai/cached-reasoning"}
    assert value(m, "litellm_input_cached_tokens_metric_total", **reasoning) == streamed["cached_tokens"]
    assert value(m, "litellm_provider_cache_read_input_tokens_metric_total", **reasoning) == streamed["cached_tokens"]
    assert value(m, "litellm_output_reasoning_tokens_metric_total", **reasoning) == streamed["reasoning_tokens"]
    # Histograms carry the key, never the end user.
    assert value(m, "litellm_request_total_latency_metric_count", api_key_alias="checkout", team="team-a") == 2
    assert "end_user" not in samples(m, "litellm_request_total_latency_metric_count")[0].labels

    # The key's budget, read at scrape time.
    budget = {"hashed_api_key": row["key_hash"][:12], "api_key_alias": "checkout"}
    assert value(m, "litellm_api_key_max_budget_metric", **budget) == 1.0
    assert value(m, "litellm_remaining_api_key_budget_metric", **budget) == pytest.approx(1.0 - row["cost"] - streamed["cost"])
    assert 719 < value(m, "litellm_api_key_budget_remaining_hours_metric", **budget) <= 720
    assert key not in str(m)  # never the key itself


async def test_budgets_limits_and_counts_of_keys_users_teams_and_end_users(gateway) -> None:
    for path, body in (
        ("/team/new", {"team_id": "team-a", "team_alias": "Team A", "max_budget": 20.0, "budget_duration": "1d",
                       "rpm_limit": 100, "members_with_roles": [{"role": "user", "user_id": "alice"}]}),
        ("/user/new", {"user_id": "bob", "max_budget": 10.0, "budget_duration": "30d", "auto_create_key": False}),
        ("/end_user/new", {"user_id": "customer-42", "max_budget": 5.0}),
    ):
        status, made = await post(gateway, path, body)
        assert status == 200, made
    key = await new_key(gateway, key_alias="checkout", user_id="bob", team_id="team-a", tpm_limit=100000,
                        model_rpm_limit={"house-model": 10}, model_tpm_limit={"house-model": 5000})
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    for _ in range(2):
        await client.chat.completions.create(model="house-model", messages=PROMPT, user="customer-42")
    await client.close()
    rows = gateway.rows()
    cost, tokens = sum(r["cost"] for r in rows), sum(r["total_tokens"] for r in rows)
    key_id = {"hashed_api_key": rows[0]["key_hash"][:12], "api_key_alias": "checkout"}
    m = await scrape(gateway.url)
    team = {"team": "team-a", "team_alias": "Team A"}
    assert value(m, "litellm_team_max_budget_metric", **team) == 20.0
    assert value(m, "litellm_remaining_team_budget_metric", **team) == pytest.approx(20.0 - cost)
    assert 23 < value(m, "litellm_team_budget_remaining_hours_metric", **team) <= 24
    assert value(m, "litellm_user_max_budget_metric", user="bob") == 10.0
    assert value(m, "litellm_remaining_user_budget_metric", user="bob") == pytest.approx(10.0 - cost)
    assert value(m, "litellm_customer_max_budget_metric", end_user="customer-42") == 5.0
    assert value(m, "litellm_remaining_customer_budget_metric", end_user="customer-42") == pytest.approx(5.0 - cost)
    # Rate limits against what the last minute used of them.
    assert value(m, "litellm_remaining_api_key_requests_for_model", **key_id, model="house-model") == 8
    assert value(m, "litellm_remaining_api_key_tokens_for_model", **key_id, model="house-model") == 5000 - tokens
    assert value(m, "litellm_api_key_rate_limit_allowed_metric", **key_id, rate_limit_type="tokens") == 100000
    assert value(m, "litellm_api_key_rate_limit_used_metric", **key_id, rate_limit_type="tokens") == tokens
    assert value(m, "litellm_team_rate_limit_allowed_metric", **team, rate_limit_type="requests") == 100
    assert value(m, "litellm_team_rate_limit_used_metric", **team, rate_limit_type="requests") == 2
    # Who there is.
    assert value(m, "litellm_total_users") == 2  # alice (a member) and bob
    assert value(m, "litellm_teams_count") == 1
    assert value(m, "litellm_team_members_metric", **team) == 1


async def test_labels_hold_a_bounded_number_of_values(gateway_factory, upstream_base, dead_base, caplog) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["metrics_label_values"] = 3
    gw = await gateway_factory(raw)
    with caplog.at_level(logging.WARNING, logger="proxy.metrics"):
        for i in range(6):
            await gw.client.chat.completions.create(model="house-model", messages=PROMPT, user=f"user-{i}")
    m = await scrape(gw.url)
    total = "litellm_proxy_total_requests_metric_total"
    assert label_values(m, total, "end_user") == {"user-0", "user-1", "user-2", "other"}
    assert value(m, total, end_user="other") == 3
    warnings = [r.getMessage() for r in caplog.records if "metrics_label_values" in r.getMessage()]
    assert len(warnings) == 1 and "end_user" in warnings[0]
    # The config's model names are known up front and never crowd out: 10 models, cap 3.
    await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    m = await scrape(gw.url)
    assert {"house-model", "gpt-4o-mini"} <= label_values(m, total, "requested_model")


async def test_end_user_label_can_be_left_out(gateway_factory, upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["litellm_settings"] = {"disable_end_user_cost_tracking_prometheus_only": True}
    gw = await gateway_factory(raw)
    await gw.client.chat.completions.create(model="house-model", messages=PROMPT, user="customer-42")
    m = await scrape(gw.url)
    assert label_values(m, "litellm_proxy_total_requests_metric_total", "end_user") == {""}
    (row,) = gw.rows()
    assert row["user_id"] == "customer-42"  # the log keeps it


async def test_in_flight_counts_requests_waiting_on_the_upstream(gateway_factory, upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append(
        {"model_name": "slowish", "litellm_params": {"model": "openai/slow-1", "api_base": upstream_base}}
    )
    gw = await gateway_factory(raw)
    tasks = [
        asyncio.create_task(gw.client.chat.completions.create(model="slowish", messages=[{"role": "user", "content": str(i)}]))
        for i in range(3)
    ]
    for _ in range(100):  # wait (bounded) until all three are admitted
        m = await scrape(gw.url)
        if value(m, "shin_in_flight_requests") == 3:
            break
        await asyncio.sleep(0.02)
    assert value(m, "shin_in_flight_requests") == 3
    assert value(m, "litellm_in_flight_requests") >= 4  # HTTP requests: the three and the scrape
    await asyncio.gather(*tasks)
    m = await scrape(gw.url)
    assert value(m, "shin_in_flight_requests") == 0
    assert value(m, "litellm_proxy_total_requests_metric_total", requested_model="slowish") == 3


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
    assert "litellm_proxy_total_requests_metric" in m


async def test_metrics_open_by_default(gateway) -> None:
    m = await scrape(gateway.url, token=None)
    assert "litellm_spend_metric" in m


async def test_remaining_budget_per_key_read_at_scrape_time(gateway) -> None:
    m = await scrape(gateway.url)
    assert value(m, "litellm_remaining_api_key_budget_metric") == 0  # no key has a budget yet
    key = await new_key(gateway, key_alias="team-a", max_budget=1.0)
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    await client.chat.completions.create(model="house-model", messages=PROMPT)
    await client.close()
    (row,) = gateway.rows("SELECT cost, key_hash FROM request_log WHERE key_alias = 'team-a'")
    assert row["cost"] > 0
    m = await scrape(gateway.url)
    assert value(m, "litellm_remaining_api_key_budget_metric", api_key_alias="team-a") == pytest.approx(1.0 - row["cost"])
    assert value(m, "litellm_api_key_max_budget_metric", api_key_alias="team-a") == 1.0
    (sample,) = samples(m, "litellm_remaining_api_key_budget_metric")
    assert row["key_hash"].startswith(sample.labels["hashed_api_key"])
    # No budget_duration: the budget never resets, so there are no hours left to tell.
    assert samples(m, "litellm_api_key_budget_remaining_hours_metric") == []


async def test_remaining_gateway_budget(gateway_factory, upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["litellm_settings"] = {"max_budget": 5.0, "budget_duration": "30d"}
    gw = await gateway_factory(raw)
    await gw.client.chat.completions.create(model="house-model", messages=PROMPT)
    (row,) = gw.rows("SELECT cost FROM request_log")
    m = await scrape(gw.url)
    assert value(m, "shin_remaining_gateway_budget_metric") == pytest.approx(5.0 - row["cost"])


async def test_lost_callback_messages_are_counted_by_callback(gateway_factory, upstream_base, dead_base) -> None:
    raw = default_raw_config(upstream_base, dead_base)
    raw["litellm_settings"] = {"failure_callback": ["slack"]}
    raw["environment_variables"] = {"SLACK_WEBHOOK_URL": dead_base + "/hook"}
    raw["general_settings"]["callback_batch_seconds"] = 0.05
    gw = await gateway_factory(raw)
    gw.app[CALLBACKS].backoff = 0.01
    with pytest.raises(openai.APIStatusError):
        await gw.client.chat.completions.create(model="broken", messages=PROMPT)
    for _ in range(200):  # bounded wait for the delivery to fail
        m = await scrape(gw.url)
        if value(m, "litellm_callback_logging_failures_metric_total", callback_name="slack"):
            break
        await asyncio.sleep(0.02)
    assert value(m, "litellm_callback_logging_failures_metric_total", callback_name="slack") == 1


async def test_two_apps_in_one_process_keep_separate_counts(gateway_factory, tmp_path) -> None:
    first = await gateway_factory(db_path=tmp_path / "a.db")
    second = await gateway_factory(db_path=tmp_path / "b.db")
    await first.client.chat.completions.create(model="house-model", messages=PROMPT)
    assert value(await scrape(first.url), "litellm_proxy_total_requests_metric_total") == 1
    assert value(await scrape(second.url), "litellm_proxy_total_requests_metric_total") == 0


async def test_the_label_cap_must_be_positive(upstream_base, dead_base) -> None:
    from proxy.config import parse_config
    from proxy.errors import ConfigError

    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["metrics_label_values"] = 0
    with pytest.raises(ConfigError, match="metrics_label_values"):
        parse_config(raw, env={})

