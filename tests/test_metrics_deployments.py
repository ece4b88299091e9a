"""Per-deployment metrics after real failover: every upstream call counted against its own
deployment, fallbacks, deployment state and limits, and the upstream's rate-limit headers."""

from __future__ import annotations

import openai

from proxy.fake_upstream import RATE_LIMIT_REQUESTS
from proxy.state import ROUTER

from .conftest import MASTER_KEY
from .metrics_helpers import samples, scrape, value

PROMPT = [{"role": "user", "content": "Which deployment answered?"}]


def deployment(name: str, model: str, base: str, **params):
    return {"model_name": name, "litellm_params": {"model": model, "api_base": base, **params}}


def config(models, **sections):
    return {"model_list": models, "general_settings": {"master_key": MASTER_KEY, "log_file": None}, **sections}


async def test_each_upstream_call_counts_against_its_deployment(gateway_factory, upstream_base, dead_base):
    gw = await gateway_factory(config([
        # weight 0: never picked first, so the dead deployment is tried first, then this one
        deployment("pair", "openai/gpt-4o-mini", upstream_base, weight=0, rpm=600, tpm=90000),
        deployment("pair", "openai/gpt-4o-mini", dead_base, weight=1),
    ]))
    raw = await gw.client.chat.completions.with_raw_response.create(model="pair", messages=PROMPT)
    raw.parse()
    live, dead = gw.app[ROUTER].deployments("pair")
    (row,) = gw.rows()
    assert row["attempts"] == 2
    m = await scrape(gw.url)
    common = {"requested_model": "pair", "litellm_model_name": "openai/gpt-4o-mini", "api_provider": "openai",
              "api_key_alias": "master"}
    assert value(m, "litellm_deployment_total_requests_total", **common) == 2
    assert value(m, "litellm_deployment_total_requests_total", model_id=dead.deployment_id) == 1
    assert value(m, "litellm_deployment_success_responses_total", **common, model_id=live.deployment_id,
                 api_base=upstream_base) == 1
    assert value(m, "litellm_deployment_failure_responses_total", **common, model_id=dead.deployment_id,
                 exception_status="unreachable", exception_class="APIConnectionError") == 1
    assert value(m, "litellm_deployment_failure_responses_total") == 1
    # The request itself is one success.
    assert value(m, "litellm_proxy_total_requests_metric_total", requested_model="pair", status_code="200") == 1

    # State, read from the router at scrape time: the dead one failed last, the live one answered.
    state = {s.labels["model_id"]: s.value for s in samples(m, "litellm_deployment_state")}
    assert state == {live.deployment_id: 0, dead.deployment_id: 1}
    assert value(m, "litellm_deployment_rpm_limit", model_id=live.deployment_id) == 600
    assert value(m, "litellm_deployment_tpm_limit", model_id=live.deployment_id) == 90000
    assert samples(m, "litellm_deployment_rpm_limit", model_id=dead.deployment_id) == []

    # Seconds of upstream time per output token, for the answered request.
    assert value(m, "litellm_deployment_latency_per_output_token_count", model_id=live.deployment_id) == 1
    assert value(m, "litellm_deployment_latency_per_output_token_sum") == (
        row["upstream_latency"] / row["completion_tokens"]
    )

    # The upstream's own x-ratelimit-* headers: passed to the client, and gauges per deployment.
    remaining = int(raw.headers["x-ratelimit-remaining-requests"])
    assert 0 < remaining < RATE_LIMIT_REQUESTS
    where = {"model_group": "pair", "api_provider": "openai", "model_id": live.deployment_id,
             "litellm_model_name": "openai/gpt-4o-mini", "api_base": upstream_base}
    for name in ("litellm_remaining_requests", "litellm_remaining_requests_metric"):
        assert value(m, name, **where) == remaining
    for name in ("litellm_remaining_tokens", "litellm_remaining_tokens_metric"):
        assert value(m, name, **where) == int(raw.headers["x-ratelimit-remaining-tokens"])


async def test_a_cooling_deployment_is_in_outage(gateway_factory, upstream_base, dead_base):
    gw = await gateway_factory(config(
        [
            deployment("pair", "openai/gpt-4o-mini", dead_base, weight=1),
            deployment("pair", "openai/gpt-4o-mini", upstream_base, weight=0),
        ],
        router_settings={"allowed_fails": 0, "cooldown_time": 60},
    ))
    await gw.client.chat.completions.create(model="pair", messages=PROMPT)
    dead, live = gw.app[ROUTER].deployments("pair")
    m = await scrape(gw.url)
    state = {s.labels["model_id"]: s.value for s in samples(m, "litellm_deployment_state")}
    assert state == {dead.deployment_id: 2, live.deployment_id: 0}
    assert value(m, "litellm_deployment_cooled_down_total", model_id=dead.deployment_id,
                 exception_status="unreachable") == 1


async def test_fallbacks_are_counted_by_outcome(gateway_factory, upstream_base, dead_base):
    gw = await gateway_factory(config(
        [
            deployment("primary", "openai/error-503", upstream_base),
            deployment("also-broken", "openai/error-500", upstream_base),
            deployment("backup", "openai/gpt-4o-mini", upstream_base),
        ],
        router_settings={"fallbacks": [{"primary": ["also-broken", "backup"]}]},
    ))
    await gw.client.chat.completions.create(model="primary", messages=PROMPT)
    m = await scrape(gw.url)
    why = {"requested_model": "primary", "exception_status": "503", "exception_class": "ServiceUnavailableError",
           "api_key_alias": "master"}
    assert value(m, "litellm_deployment_failed_fallbacks_total", **why, fallback_model="also-broken") == 1
    assert value(m, "litellm_deployment_successful_fallbacks_total", **why, fallback_model="backup") == 1
    assert value(m, "litellm_deployment_failure_responses_total", requested_model="primary") == 2
    assert value(m, "litellm_deployment_success_responses_total", litellm_model_name="openai/gpt-4o-mini") == 1


async def test_client_errors_count_as_failed_calls_but_leave_the_deployment_healthy(gateway_factory, upstream_base, dead_base):
    gw = await gateway_factory(config([deployment("picky", "openai/error-400", upstream_base)]))
    try:
        await gw.client.chat.completions.create(model="picky", messages=PROMPT)
    except openai.BadRequestError:
        pass
    m = await scrape(gw.url)
    assert value(m, "litellm_deployment_failure_responses_total", exception_status="400",
                 exception_class="BadRequestError") == 1
    assert [s.value for s in samples(m, "litellm_deployment_state")] == [0]
