"""Every failure gets the OpenAI envelope with the right status, is logged exactly once, and the
gateway keeps serving."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest

from proxy.fake_upstream import FakeOptions, create_fake_app

from .conftest import MASTER_KEY, default_raw_config

PROMPT = [{"role": "user", "content": "hello"}]
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


async def post(gateway, body: bytes | dict, headers: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
        async with http.post(f"{gateway.url}/v1/chat/completions", headers=AUTH if headers is None else headers, **kwargs) as resp:
            return resp.status, await resp.json()


def assert_envelope(body: dict, error_type: str | None = None) -> dict:
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["message"]
    if error_type:
        assert error["type"] == error_type
    return error


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'{"messages": []}', "model parameter"),
    ],
)
async def test_bad_request_bodies(gateway, raw, message):
    status, body = await post(gateway, raw)
    assert status == 400
    assert message in assert_envelope(body, "invalid_request_error")["message"]
    rows = gateway.rows()
    assert [r["status_code"] for r in rows] == [400]
    assert rows[0]["model"] == "" and rows[0]["cost"] == 0 and rows[0]["response"]


async def test_unknown_model_is_404_naming_available_models(gateway):
    with pytest.raises(openai.NotFoundError) as info:
        await gateway.client.chat.completions.create(model="gpt-5-ultra", messages=PROMPT)
    message = info.value.body["message"]
    assert "gpt-5-ultra" in message and "gpt-4o-mini" in message
    row = gateway.rows()[0]
    assert (row["model"], row["status_code"], row["error_type"]) == ("gpt-5-ultra", 404, "invalid_request_error")


async def test_bad_and_missing_key_are_401_and_logged(gateway):
    bad = gateway.client.with_options(api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError):
        await bad.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    status, body = await post(gateway, {"model": "gpt-4o-mini", "messages": PROMPT}, headers={})
    assert status == 401 and assert_envelope(body, "authentication_error")
    rows = gateway.rows()
    assert [(r["status_code"], r["model"]) for r in rows] == [(401, "gpt-4o-mini")] * 2
    assert all(r["key_hash"] is None for r in rows)
    # the wrong key itself is never stored
    assert not any("sk-wrong" in str(v) for r in rows for v in dict(r).values())


async def test_upstream_unreachable_is_502(gateway):
    with pytest.raises(openai.APIStatusError) as info:
        await gateway.client.chat.completions.create(model="down", messages=PROMPT)
    assert info.value.status_code == 502
    row = gateway.rows()[0]
    assert row["status_code"] == 502 and row["error_type"] == "upstream_error" and "unreachable" in row["response"]


async def test_upstream_timeout_is_504(gateway):
    with pytest.raises(openai.APIStatusError) as info:
        await gateway.client.chat.completions.create(model="slow", messages=PROMPT)
    assert info.value.status_code == 504
    row = gateway.rows()[0]
    assert row["status_code"] == 504 and row["error_type"] == "timeout"


@pytest.mark.parametrize("model, status, exc", [("broken", 503, openai.InternalServerError), ("bad-request", 400, openai.BadRequestError)])
async def test_upstream_errors_are_passed_on(gateway, model, status, exc):
    with pytest.raises(exc) as info:
        await gateway.client.chat.completions.create(model=model, messages=PROMPT)
    assert info.value.status_code == status
    assert "fake upstream error" in info.value.body["message"]
    row = gateway.rows()[0]
    assert row["status_code"] == status and "fake upstream error" in row["response"]


async def test_upstream_error_on_a_stream_before_any_byte(gateway):
    with pytest.raises(openai.InternalServerError):
        stream = await gateway.client.chat.completions.create(model="broken", messages=PROMPT, stream=True)
        async for _ in stream:
            pass
    assert [r["status_code"] for r in gateway.rows()] == [503]


async def test_upstream_dies_mid_stream(gateway):
    received = []
    with pytest.raises(openai.APIError):
        stream = await gateway.client.chat.completions.create(model="cutoff", messages=PROMPT, stream=True)
        async for chunk in stream:
            received.append(chunk)
    assert received  # the first chunks did arrive
    row = gateway.rows()[0]
    assert row["status_code"] == 502 and row["stream"] == 1 and row["error_type"] == "upstream_error"
    assert "broke off" in row["response"]
    # the words that did stream were generated (and billed) upstream: estimated, not zero
    assert row["tokens_estimated"] == 1 and row["completion_tokens"] > 0


async def test_client_disconnect_mid_stream_is_logged_with_partial_text(gateway_factory, aiohttp_server, tmp_path):
    slow_stream = await aiohttp_server(create_fake_app(FakeOptions(chunk_delay=0.05, stream_chunks=40)))
    raw = default_raw_config(str(slow_stream.make_url("/v1")), "http://127.0.0.1:9/v1")
    gw = await gateway_factory(raw)
    body = {"model": "gpt-4o-mini", "messages": PROMPT, "stream": True}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{gw.url}/v1/chat/completions", json=body, headers=AUTH)
        first = await resp.content.readuntil(b"\n\n")
        assert first.startswith(b"data: ")
        resp.close()  # hang up mid-answer
    for _ in range(100):  # the gateway notices on its next write
        await asyncio.sleep(0.05)
        gw.flush()
        if gw.rows():
            break
    rows = gw.rows()
    assert len(rows) == 1
    row = rows[0]
    assert row["status_code"] == 499 and row["error_type"] == "client_disconnected"
    assert row["response"] and row["completion_tokens"] > 0 and row["tokens_estimated"] == 1
    # The gateway still serves.
    reply = await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert reply.choices and len(gw.rows()) == 2


async def test_wrong_method_and_unknown_path_get_envelopes(gateway):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/v1/chat/completions", headers=AUTH) as resp:
            assert resp.status == 405
            assert_envelope(await resp.json())
        async with http.post(f"{gateway.url}/v1/nothing-here", headers=AUTH) as resp:
            assert resp.status == 404
            assert_envelope(await resp.json())


async def test_each_failure_logged_once_and_gateway_keeps_serving(gateway):
    calls = [
        gateway.client.chat.completions.create(model=m, messages=PROMPT)
        for m in ["down", "broken", "nope", "gpt-4o-mini", "slow", "gpt-4o-mini"]
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 2
    statuses = sorted(r["status_code"] for r in gateway.rows())
    assert statuses == [200, 200, 404, 502, 503, 504]


async def test_client_gives_up_while_waiting_for_the_upstream(gateway_factory, upstream_base, dead_base):
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append({"model_name": "thinking", "litellm_params": {"model": "openai/slow-1", "api_base": upstream_base, "timeout": 10}})
    gw = await gateway_factory(raw)
    impatient = gw.client.with_options(timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await impatient.chat.completions.create(model="thinking", messages=PROMPT)
    for _ in range(60):  # the gateway learns of the hang-up when aiohttp cancels the handler
        await asyncio.sleep(0.05)
        if gw.rows():
            break
    row = gw.rows()[0]
    assert (row["status_code"], row["error_type"]) == (499, "client_disconnected")
    reply = await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert reply.choices and len(gw.rows()) == 2


async def test_upstream_that_rejects_stream_options_still_streams(gateway_factory, fake_upstream, upstream_base, dead_base):
    from proxy.fake_upstream import COUNTER

    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append({"model_name": "old-server", "litellm_params": {"model": "openai/strict", "api_base": upstream_base}})
    gw = await gateway_factory(raw)
    calls = fake_upstream.app[COUNTER]
    for expected_calls in (2, 1):  # asked once with stream_options, then remembered
        before = calls[0]
        stream = await gw.client.chat.completions.create(model="old-server", messages=PROMPT, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text and calls[0] - before == expected_calls
    rows = gw.rows()
    assert [r["status_code"] for r in rows] == [200, 200]
    assert all(r["tokens_estimated"] == 1 and r["completion_tokens"] > 0 for r in rows)
    # a client that asks for usage itself gets the upstream's answer to that
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        await gw.client.chat.completions.create(model="old-server", messages=PROMPT, stream=True,
                                                stream_options={"include_usage": True})
