"""Retries, cooldowns and fallbacks end to end: the official SDK → gateway → fake upstream.

The fake upstream's model names steer failures: error-503 (a broken deployment), a dead port
(unreachable), context-window and content-policy (OpenAI's own 400s). `weight: 0` keeps a
deployment from being picked first, so the order of attempts is deterministic.
"""

from __future__ import annotations

import aiohttp
import openai
import pytest

from proxy.fake_upstream import SEEN, FakeOptions, create_fake_app
from proxy.state import ROUTER

from .conftest import MASTER_KEY

PROMPT = [{"role": "user", "content": "Summarise yesterday's incidents."}]


def deployment(name: str, model: str, base: str, **params):
    return {"model_name": name, "litellm_params": {"model": model, "api_base": base, **params}}


def config(models, **sections):
    return {"model_list": models, "general_settings": {"master_key": MASTER_KEY, "log_file": None}, **sections}


async def status_of(coro) -> int:
    try:
        await coro
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


@pytest.mark.parametrize("section", ["router_settings", "litellm_settings"])
async def test_fallback_answers_when_every_deployment_fails(gateway_factory, upstream_base, dead_base, section):
    gw = await gateway_factory(config(
        [
            deployment("primary", "openai/error-503", upstream_base),
            deployment("primary", "openai/gpt-4o-mini", dead_base),
            deployment("backup", "openai/gpt-4o-mini", upstream_base),
        ],
        **{section: {"fallbacks": [{"primary": ["missing-model", "backup"]}]}},
    ))
    raw = await gw.client.chat.completions.with_raw_response.create(model="primary", messages=PROMPT)
    assert raw.parse().choices[0].message.content
    backup_id = gw.app[ROUTER].deployments("backup")[0].deployment_id
    assert (raw.headers["x-litellm-model-group"], raw.headers["x-litellm-model-id"]) == ("backup", backup_id)
    (row,) = gw.rows()
    assert (row["status_code"], row["model"], row["model_group"], row["attempts"]) == (200, "primary", "backup", 3)
    assert row["upstream_model"] == "openai/gpt-4o-mini" and row["api_base"] == upstream_base
    assert row["cost"] > 0  # priced as the model that answered


async def test_without_fallbacks_the_last_failure_is_returned(gateway_factory, upstream_base, dead_base):
    gw = await gateway_factory(config([
        deployment("primary", "openai/gpt-4o-mini", dead_base, weight=1),
        deployment("primary", "openai/error-503", upstream_base, weight=0),
    ]))
    assert await status_of(gw.client.chat.completions.create(model="primary", messages=PROMPT)) == 503
    (row,) = gw.rows()
    assert (row["status_code"], row["attempts"], row["model_group"]) == (503, 2, "primary")


async def test_context_window_errors_go_to_their_own_fallbacks(gateway_factory, upstream_base):
    models = [
        deployment("small", "openai/context-window", upstream_base),
        deployment("large", "openai/gpt-4o-mini", upstream_base),
        deployment("other", "openai/gpt-4o-mini", upstream_base),
    ]
    gw = await gateway_factory(config(models, router_settings={
        "context_window_fallbacks": [{"small": ["large"]}], "fallbacks": [{"small": ["other"]}],
    }))
    await gw.client.chat.completions.create(model="small", messages=PROMPT)
    (row,) = gw.rows()
    assert (row["model"], row["model_group"], row["attempts"], row["status_code"]) == ("small", "large", 2, 200)

    # No context-window fallback: the provider's own 400 reaches the client, nothing else tried.
    plain = await gateway_factory(config(models, router_settings={"fallbacks": [{"small": ["other"]}]}),
                                  db_path=gw.db_path.with_name("plain.db"))
    with pytest.raises(openai.BadRequestError) as info:
        await plain.client.chat.completions.create(model="small", messages=PROMPT)
    assert info.value.code == "context_length_exceeded"
    (row,) = plain.rows()
    assert (row["status_code"], row["attempts"], row["model_group"]) == (400, 1, "small")


async def test_content_policy_fallback_for_a_stream(gateway_factory, upstream_base):
    gw = await gateway_factory(config(
        [
            deployment("strict-model", "openai/content-policy", upstream_base),
            deployment("lenient", "openai/gpt-4o-mini", upstream_base),
        ],
        litellm_settings={"content_policy_fallbacks": [{"strict-model": ["lenient"]}]},
    ))
    stream = await gw.client.chat.completions.create(model="strict-model", messages=PROMPT, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text
    (row,) = gw.rows()
    assert (row["stream"], row["model_group"], row["attempts"], row["response"]) == (1, "lenient", 2, text)


async def test_a_bad_request_is_not_retried_or_fallen_back(gateway_factory, upstream_base):
    gw = await gateway_factory(config(
        [
            deployment("picky", "openai/error-400", upstream_base),
            deployment("picky", "openai/error-400", upstream_base),
            deployment("backup", "openai/gpt-4o-mini", upstream_base),
        ],
        router_settings={"fallbacks": [{"*": ["backup"]}]},
    ))
    assert await status_of(gw.client.chat.completions.create(model="picky", messages=PROMPT)) == 400
    (row,) = gw.rows()
    assert (row["attempts"], row["model_group"]) == (1, "picky")


async def test_a_failing_deployment_cools_down_and_shows_in_metrics(gateway_factory, upstream_base, dead_base):
    gw = await gateway_factory(config(
        [
            deployment("gpt-4o-mini", "openai/gpt-4o-mini", dead_base, weight=1),
            deployment("gpt-4o-mini", "openai/gpt-4o-mini", upstream_base, weight=0),
        ],
        router_settings={"allowed_fails": 1, "cooldown_time": 60},
    ))
    for _ in range(3):
        await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    # Two failures (> allowed_fails) cool the dead deployment: the third request skips it.
    assert [r["attempts"] for r in gw.rows()] == [2, 2, 1]
    dead = next(s for s in gw.app[ROUTER].stats() if s.api_base == dead_base)
    assert dead.cooling_down and dead.cooldowns == {"unreachable": 1} and dead.failures == 2
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/metrics") as resp:
            text = await resp.text()
    line = next(ln for ln in text.splitlines() if ln.startswith("litellm_deployment_cooled_down_total{"))
    assert f'model_id="{dead.deployment_id}"' in line and 'exception_status="unreachable"' in line
    assert line.endswith(" 1.0")


async def test_when_all_deployments_cool_down_the_client_is_told_when_to_retry(gateway_factory, upstream_base, dead_base):
    models = [
        deployment("pair", "openai/gpt-4o-mini", dead_base),
        deployment("pair", "openai/error-503", upstream_base),
        deployment("backup", "openai/gpt-4o-mini", upstream_base),
    ]
    settings = {"allowed_fails": 0, "cooldown_time": 30}
    gw = await gateway_factory(config(models, router_settings=settings))
    assert await status_of(gw.client.chat.completions.create(model="pair", messages=PROMPT)) in (502, 503)
    with pytest.raises(openai.RateLimitError) as info:
        await gw.client.chat.completions.create(model="pair", messages=PROMPT)
    assert 1 <= int(info.value.response.headers["Retry-After"]) <= 30
    assert "cooling down" in info.value.message
    rows = gw.rows()
    assert (rows[1]["status_code"], rows[1]["attempts"]) == (429, 0)

    # With a fallback, the cooling model's requests are served by it instead.
    fallback = await gateway_factory(config(models, router_settings={**settings, "fallbacks": [{"pair": ["backup"]}]}),
                                     db_path=gw.db_path.with_name("fallback.db"))
    for _ in range(2):
        await fallback.client.chat.completions.create(model="pair", messages=PROMPT)
    assert [(r["model_group"], r["attempts"]) for r in fallback.rows()] == [("backup", 3), ("backup", 1)]


async def test_wildcard_models_reach_the_provider_as_named_and_are_priced(gateway_factory, upstream_base, fake_upstream):
    from genai_prices import Usage, calc_price

    gw = await gateway_factory(config([deployment("*", "openai/*", upstream_base)]))
    reply = await gw.client.chat.completions.create(model="gpt-4o", messages=PROMPT)
    await gw.client.chat.completions.create(model="house-special", messages=PROMPT)
    priced, unpriced = gw.rows()
    expected = calc_price(Usage(input_tokens=reply.usage.prompt_tokens, output_tokens=reply.usage.completion_tokens),
                          "gpt-4o", provider_id="openai").total_price
    assert (priced["model"], priced["upstream_model"], priced["model_group"]) == ("gpt-4o", "openai/gpt-4o", "*")
    assert priced["cost"] == pytest.approx(float(expected)) and priced["cost_status"] == "priced"
    assert unpriced["cost_status"] == "unpriced" and unpriced["upstream_model"] == "openai/house-special"
    assert [body["model"] for _, body in fake_upstream.app[SEEN]] == ["gpt-4o", "house-special"]


async def test_model_group_alias_and_router_timeout(gateway_factory, upstream_base):
    gw = await gateway_factory(config(
        [deployment("gpt-4o-mini", "openai/gpt-4o-mini", upstream_base),
         deployment("slow", "openai/slow-2", upstream_base)],
        router_settings={"model_group_alias": {"gpt-4": "gpt-4o-mini",
                                               "secret-name": {"model": "gpt-4o-mini", "hidden": True}},
                         "timeout": 0.3},
    ))
    await gw.client.chat.completions.create(model="gpt-4", messages=PROMPT)
    await gw.client.chat.completions.create(model="secret-name", messages=PROMPT)
    assert await status_of(gw.client.chat.completions.create(model="slow", messages=PROMPT)) == 504
    listed = [m.id async for m in gw.client.models.list()]
    assert "gpt-4" in listed and "secret-name" not in listed
    rows = gw.rows()
    assert [(r["model"], r["model_group"]) for r in rows[:2]] == [("gpt-4", "gpt-4o-mini"), ("secret-name", "gpt-4o-mini")]


async def test_litellm_params_request_defaults_yield_to_the_client(gateway_factory, upstream_base, fake_upstream):
    gw = await gateway_factory(config([deployment("terse", "openai/gpt-4o-mini", upstream_base,
                                                  max_tokens=3, temperature=0.1)]))
    short = await gw.client.chat.completions.create(model="terse", messages=PROMPT)
    longer = await gw.client.chat.completions.create(model="terse", messages=PROMPT, max_tokens=5)
    assert short.usage.completion_tokens == 3 and longer.usage.completion_tokens == 5
    assert [(b["temperature"], b["max_tokens"]) for _, b in fake_upstream.app[SEEN]] == [(0.1, 3), (0.1, 5)]


async def test_least_busy_sends_the_next_request_to_the_idle_deployment(gateway_factory, aiohttp_server):
    # Streams of 12 chunks 0.1 s apart: the first request is still in flight for a second.
    fakes = [await aiohttp_server(create_fake_app(FakeOptions(chunk_delay=0.1))) for _ in range(2)]
    bases = [str(fake.make_url("/v1")) for fake in fakes]
    gw = await gateway_factory(config(
        [deployment("m", "openai/gpt-4o-mini", b) for b in bases],
        router_settings={"routing_strategy": "least-busy"},
    ))
    stream = await gw.client.chat.completions.create(model="m", messages=PROMPT, stream=True)
    busy = [s for s in gw.app[ROUTER].stats() if s.in_flight]
    assert len(busy) == 1  # the open stream holds its deployment
    await gw.client.chat.completions.create(model="m", messages=PROMPT)
    async for _ in stream:
        pass
    streamed, plain = sorted(gw.rows(), key=lambda r: r["stream"], reverse=True)
    assert streamed["api_base"] == busy[0].api_base and plain["api_base"] != busy[0].api_base
    assert {s.in_flight for s in gw.app[ROUTER].stats()} == {0}


async def test_a_stream_that_breaks_after_its_first_byte_is_not_retried(gateway_factory, upstream_base):
    gw = await gateway_factory(config(
        [deployment("flaky", "openai/cutoff", upstream_base),
         deployment("flaky", "openai/cutoff", upstream_base),
         deployment("backup", "openai/gpt-4o-mini", upstream_base)],
        router_settings={"fallbacks": [{"flaky": ["backup"]}]},
    ))
    stream = await gw.client.chat.completions.create(model="flaky", messages=PROMPT, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    (row,) = gw.rows()
    assert (row["status_code"], row["attempts"], row["model_group"]) == (502, 1, "flaky")
