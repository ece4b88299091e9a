"""Every cent a provider bills is charged: hang-ups, tool calls, reasoning, client stream_options,
and accounting that fails must not let a request through for free or leak what it holds."""

from __future__ import annotations

import asyncio
import json
import math

import aiohttp
import openai
import pytest

from proxy.fake_upstream import COUNTER

from .conftest import MASTER_KEY
from .keys_helpers import chat, generate, key_info, keys_config, sdk
from .test_metrics import scrape, value

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
# ~1,400 estimated tokens: what a hang-up must still pay for.
LONG_PROMPT = [{"role": "user", "content": "Summarise the incident report. " * 180}]
PER_PROMPT_TOKEN = 0.000001  # config prices of "thinker" (and keys_helpers' house-model)


def charges_config(upstream_base: str, dead_base: str, **litellm_settings: object) -> dict:
    raw = keys_config(upstream_base, dead_base, **litellm_settings)
    raw["model_list"] += [
        {"model_name": name, "litellm_params": {"model": f"openai/{upstream}", "api_base": upstream_base,
                                                "timeout": 30, "input_cost_per_token": PER_PROMPT_TOKEN,
                                                "output_cost_per_token": 0.000002}}
        for name, upstream in [("thinker", "slow-30"), ("tools", "nousage-toolcall"),
                               ("reasoner", "nousage-reasoning"), ("tools-usage", "toolcall")]
    ]
    return raw


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    return await gateway_factory(charges_config(upstream_base, dead_base))


async def wait_for_rows(gw, count: int) -> list:
    """The gateway learns of a hang-up when aiohttp cancels the handler: poll for its row."""
    for _ in range(200):
        rows = gw.rows()
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} rows, got {len(gw.rows())}")


async def hang_up(gw, upstream, key: str, *, stream: bool) -> None:
    """Send the long prompt to a model that thinks for 30 s; give up once the provider has it."""
    calls = upstream.app[COUNTER]
    before = calls[0]
    body = {"model": "thinker", "messages": LONG_PROMPT, "stream": stream}
    async with aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(
            http.post(f"{gw.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        )
        for _ in range(400):
            await asyncio.sleep(0.02)
            if calls[0] > before:
                break
        assert calls[0] == before + 1, "the request never reached the fake upstream"
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_a_hang_up_before_the_first_token_pays_for_the_prompt(gw, fake_upstream, stream):
    key = await generate(gw, max_budget=0.0005)
    await hang_up(gw, fake_upstream, key["key"], stream=stream)
    row = (await wait_for_rows(gw, 1))[0]
    assert (row["status_code"], row["stream"]) == (499, int(stream))
    assert row["upstream_latency"] is not None  # it was sent upstream
    expected = math.ceil(len(LONG_PROMPT[0]["content"]) / 4)
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens_estimated"]) == (expected, 0, 1)
    assert row["cost"] == pytest.approx(expected * PER_PROMPT_TOKEN) and row["cost"] > 0.0005
    # charged to the key, whose budget it has now used up
    assert (await key_info(gw, key["key"]))["spend"] == pytest.approx(row["cost"])
    status, body, _ = await chat(gw, key["key"])
    assert status == 429 and body["error"]["type"] == "budget_exceeded"


async def test_a_hang_up_is_charged_to_the_global_budget(gateway_factory, fake_upstream, upstream_base, dead_base):
    gw = await gateway_factory(charges_config(upstream_base, dead_base, max_budget=0.0005, budget_duration="30d"))
    await hang_up(gw, fake_upstream, MASTER_KEY, stream=True)
    assert (await wait_for_rows(gw, 1))[0]["cost"] > 0.0005
    with pytest.raises(openai.RateLimitError, match="Budget has been exceeded"):
        await gw.client.chat.completions.create(model="house-model", messages=LONG_PROMPT)


async def test_refused_and_unreachable_requests_are_not_charged(gw):
    """Providers do not bill a request they refused with an error status, nor one that never
    reached them."""
    for model in ("broken", "bad-request", "down"):
        with pytest.raises(openai.APIStatusError):
            await gw.client.chat.completions.create(model=model, messages=LONG_PROMPT)
    rows = gw.rows()
    assert [(r["status_code"], r["cost"], r["prompt_tokens"]) for r in rows] == [(503, 0, 0), (400, 0, 0), (502, 0, 0)]
    assert [r["upstream_latency"] is None for r in rows] == [False, False, True]


async def streamed_and_plain(gw, model: str) -> tuple:
    stream = await gw.client.chat.completions.create(model=model, messages=LONG_PROMPT, stream=True)
    chunks = [c async for c in stream]
    plain = await gw.client.chat.completions.create(model=model, messages=LONG_PROMPT)
    streamed_row, plain_row = gw.rows()
    return chunks, plain, streamed_row, plain_row


async def test_tool_call_streams_count_as_output(gw):
    chunks, plain, streamed, unstreamed = await streamed_and_plain(gw, "tools")
    assert any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    calls = json.loads(streamed["response"])
    assert calls[0]["function"]["name"] == "lookup" and json.loads(calls[0]["function"]["arguments"])["query"]
    # the streamed row stores what the non-streamed one does, and estimates it alike
    expected = json.dumps([c.model_dump(exclude_none=True) for c in plain.choices[0].message.tool_calls])
    assert streamed["response"] == unstreamed["response"] and json.loads(expected) == calls
    assert streamed["tokens_estimated"] == 1 and streamed["completion_tokens"] == math.ceil(len(streamed["response"]) / 4)
    assert streamed["completion_tokens"] == unstreamed["completion_tokens"] > 0
    assert streamed["cost"] == pytest.approx(unstreamed["cost"])


async def test_tool_call_stream_with_usage_keeps_the_upstream_count(gw):
    _, plain, streamed, unstreamed = await streamed_and_plain(gw, "tools-usage")
    assert streamed["tokens_estimated"] == 0 and streamed["completion_tokens"] == plain.usage.completion_tokens
    assert streamed["response"] == unstreamed["response"]


async def test_reasoning_streams_count_as_output(gw):
    chunks, plain, streamed, unstreamed = await streamed_and_plain(gw, "reasoner")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = plain.choices[0].message.model_extra["reasoning_content"]
    assert text and reasoning
    # reasoning is billed output, but not the response text
    assert streamed["response"] == text == unstreamed["response"]
    assert streamed["completion_tokens"] == math.ceil((len(text) + len(reasoning)) / 4)
    assert streamed["completion_tokens"] == unstreamed["completion_tokens"]
    assert streamed["tokens_estimated"] == unstreamed["tokens_estimated"] == 1


@pytest.mark.parametrize("options", [{}, {"include_usage": False}], ids=["empty", "false"])
async def test_client_stream_options_without_include_usage_keep_true_usage(gw, options):
    stream = await gw.client.chat.completions.create(
        model="house-model", messages=LONG_PROMPT, stream=True, stream_options=options
    )
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)  # none added
    plain = await gw.client.chat.completions.create(model="house-model", messages=LONG_PROMPT)
    row = gw.rows()[0]
    assert row["tokens_estimated"] == 0
    assert row["prompt_tokens"] == plain.usage.prompt_tokens and row["completion_tokens"] == 12


async def test_accounting_that_fails_still_logs_and_releases_the_key(gw, caplog):
    """A null text part on the estimate path used to raise in finish(): a bare 500, no row, and
    a parallel slot never released."""
    key = await generate(gw, max_parallel_requests=1)
    messages = [{"role": "user", "content": [{"type": "text", "text": None}, "not a part", {"type": "text", "text": "hi"}]}]
    async with sdk(gw, key["key"]) as client:
        for stream in (False, True, False):
            reply = await client.chat.completions.create(model="nousage", messages=messages, stream=stream)
            if stream:
                assert [c async for c in reply]
    rows = gw.rows()
    assert [r["status_code"] for r in rows] == [200, 200, 200]
    assert all(r["tokens_estimated"] == 1 and r["prompt_tokens"] == 1 for r in rows)
    assert value(await scrape(gw.url), "shin_in_flight_requests") == 0


async def test_a_failing_hook_still_releases_the_slot_and_logs(gw, caplog):
    """Fault injection: a request hook whose complete() raises, placed before the key service."""
    from proxy.state import HOOKS

    class Broken:
        async def admit(self, exchange):
            return None

        def complete(self, exchange, record):
            raise RuntimeError("hook failure injected by the test")

    gw.app[HOOKS].insert(0, Broken())
    key = await generate(gw, max_parallel_requests=1)
    for _ in range(3):
        assert (await chat(gw, key["key"]))[0] == 200
    assert [r["status_code"] for r in gw.rows()] == [200, 200, 200]
    assert "hook failure injected" in caplog.text


def test_a_row_that_cannot_be_built_becomes_a_fallback_row(tmp_path, caplog):
    """Fault injection below the HTTP layer: an exchange whose usage is not a TokenUsage."""
    import logging
    import sqlite3

    from proxy.accounting.exchange import Exchange
    from proxy.accounting.logger import RequestLogger
    from proxy.logdb.writer import LogWriter

    completed = []

    class Recorder:
        async def admit(self, exchange):
            return None

        def complete(self, exchange, record):
            completed.append(record)

    writer = LogWriter(tmp_path / "litellm.db")
    writer.start()
    try:
        logger = RequestLogger(writer, [Recorder()], store_prompts=True, max_stored_chars=100)
        ex = Exchange(endpoint="/v1/chat/completions", model="gpt-4o-mini", status=502)
        ex.usage = object()  # type: ignore[assignment]
        ex.fail(502, "upstream_error", "broke off")
        with caplog.at_level(logging.ERROR, logger="proxy"):
            record = logger.finish(ex)
            assert logger.finish(ex) is None  # once
        assert writer.wait_idle(10)
    finally:
        writer.stop()
    assert record is not None and completed == [record]
    assert caplog.text.count("logging a fallback row") == 1
    with sqlite3.connect(tmp_path / "litellm.db") as conn:
        rows = conn.execute("SELECT request_id, model, status_code, response, cost FROM request_log").fetchall()
    assert rows == [(ex.request_id, "gpt-4o-mini", 502, "broke off", 0.0)]
