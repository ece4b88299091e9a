"""Bad input gets a clear 400 naming the param, is logged, and never reaches the provider;
everything the gateway does not itself rely on passes through untouched."""

from __future__ import annotations

import json

import aiohttp
import pytest

from proxy.fake_upstream import COUNTER

from .conftest import MASTER_KEY, default_raw_config

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
CHAT = [{"role": "user", "content": "hello"}]


async def post(gw, path: str, body: bytes | dict) -> tuple[int, dict]:
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.url}{path}", headers=AUTH, **kwargs) as resp:
            return resp.status, await resp.json()


@pytest.mark.parametrize(
    "path, body, param, code",
    [
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": 123}, "messages", "invalid_type"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": "hello"}, "messages", "invalid_type"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [1, 2]}, "messages[0]", "invalid_type"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []}, "messages", "empty_array"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini"}, "messages", "missing_required_parameter"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [*CHAT, {"content": "hi"}]},
         "messages[1].role", "missing_required_parameter"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": ["user"]}]},
         "messages[0].role", "invalid_type"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT, "stream": "yes"}, "stream", "invalid_type"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT, "stream": 1}, "stream", "invalid_type"),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT, "stream_options": "usage"},
         "stream_options", "invalid_type"),
        ("/v1/chat/completions", {"model": ["gpt-4o-mini"], "messages": CHAT}, "model", "invalid_type"),
        ("/v1/chat/completions", {"model": "", "messages": CHAT}, "model", "missing_required_parameter"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": {}}, "input", "invalid_type"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", 1]}, "input[1]", "invalid_type"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [[1, 2], ["a"]]}, "input[1]", "invalid_type"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [None]}, "input[0]", "invalid_type"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": []}, "input", "empty_array"),
        ("/v1/completions", {"model": "gpt-4o-mini"}, "prompt", "missing_required_parameter"),
        ("/v1/completions", {"model": "gpt-4o-mini", "prompt": 12}, "prompt", "invalid_type"),
        ("/v1/completions", {"model": "gpt-4o-mini", "prompt": "hi", "stream": "no"}, "stream", "invalid_type"),
    ],
)
async def test_wrong_types_are_400_naming_the_param(gateway, fake_upstream, path, body, param, code):
    calls = fake_upstream.app[COUNTER][0]
    status, answer = await post(gateway, path, body)
    assert status == 400, answer
    error = answer["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert f"'{param}'" in error["message"] or param == "model"
    assert fake_upstream.app[COUNTER][0] == calls  # never the provider's problem
    rows = gateway.rows()
    assert [(r["status_code"], r["error_type"]) for r in rows] == [(400, "invalid_request_error")]
    assert rows[0]["response"] == error["message"]
    if isinstance(body.get("model"), str):
        assert rows[0]["model"] == body["model"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [[1, 2], [3]]}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [1, 2, 3]}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}),
        ("/v1/completions", {"model": "gpt-4o-mini", "prompt": ["a", "b"], "stream": None}),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT, "stream": False, "stream_options": None}),
        # content is the provider's business: any JSON passes
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": {"odd": [1]}}]}),
    ],
)
async def test_valid_shapes_pass(gateway, path, body):
    status, answer = await post(gateway, path, body)
    assert status == 200, answer
    assert [r["status_code"] for r in gateway.rows()] == [200]


async def test_every_other_field_passes_through_untouched(gateway_factory, upstream_base, dead_base):
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append({"model_name": "echo", "litellm_params": {"model": "openai/echo", "api_base": upstream_base}})
    gw = await gateway_factory(raw)
    extra = {
        "logit_bias": {"50256": -100},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "provider_field_of_tomorrow": [1, {"nested": None}, "x"],
        "temperature": "hot",  # not ours to judge: the provider answers for its own fields
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}], "name": 7}],
    }
    status, answer = await post(gw, "/v1/chat/completions", {"model": "echo", **extra})
    assert status == 200, answer
    received = json.loads(answer["choices"][0]["message"]["content"])
    assert received == {"model": "echo", **extra}


@pytest.mark.parametrize("depth", [100_000, 5_000, 990])
async def test_deeply_nested_json_is_400(gateway, depth):
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ' + b"[" * depth + b"]" * depth + b"}]}"
    status, answer = await post(gateway, "/v1/chat/completions", body)
    assert status in (200, 400), answer  # shallow enough to parse may pass on to the provider
    if depth >= 5_000:
        assert status == 400 and answer["error"]["code"] == "invalid_json"
        assert "nested too deeply" in answer["error"]["message"]
    rows = gateway.rows()
    assert [r["status_code"] for r in rows] == [status]
    # and the gateway keeps serving
    status, _ = await post(gateway, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT})
    assert status == 200


async def test_invalid_utf8_is_400(gateway):
    status, answer = await post(gateway, "/v1/chat/completions", b'{"model": "gpt-4o-mini\xff", "messages": []}')
    assert status == 400 and answer["error"]["code"] == "invalid_json"
    assert [r["status_code"] for r in gateway.rows()] == [400]
