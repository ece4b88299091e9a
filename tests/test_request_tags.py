"""Request tags and metadata, as LiteLLM accepts them, land in request_log.metadata as one JSON.

The real gateway in front of the real fake upstream, called with the official SDK and with a
raw aiohttp client; the `strict` upstream answers 400 to a body carrying `tags` (as OpenAI
does to fields it does not know), so a 200 proves the gateway kept them to itself.
"""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest

from proxy.accounting.tags import merged_metadata
from tests.conftest import MASTER_KEY, default_raw_config

PROMPT = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append(
        {"model_name": "strict", "litellm_params": {"model": "openai/strict", "api_base": upstream_base}})
    return await gateway_factory(raw)


def stored(gw) -> list[dict | None]:
    return [json.loads(r["metadata"]) if r["metadata"] else None
            for r in gw.rows("SELECT metadata FROM request_log ORDER BY id")]


async def test_body_metadata_tags_and_header_merge_into_one_json(gw) -> None:
    await gw.client.chat.completions.create(
        model="strict", messages=PROMPT,
        extra_body={"metadata": {"project": "search", "feature": "rerank", "tags": ["batch", "eu"]},
                    "tags": ["eu", "nightly"]},
        extra_headers={"x-litellm-tags": "prod , batch,,team-web"},
    )
    stream = await gw.client.chat.completions.create(
        model="strict", messages=PROMPT, stream=True, extra_body={"tags": ["streamed"]})
    assert [c async for c in stream]
    await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert stored(gw) == [
        {"project": "search", "feature": "rerank", "tags": ["batch", "eu", "nightly", "prod", "team-web"]},
        {"tags": ["streamed"]},
        None,
    ]


async def test_failed_requests_keep_their_tags(gw) -> None:
    with pytest.raises(openai.NotFoundError):
        await gw.client.chat.completions.create(
            model="no-such-model", messages=PROMPT, extra_body={"metadata": {"project": "search"}},
            extra_headers={"x-litellm-tags": "prod"})
    # Refused before the body is read: the header's tags are still on the row.
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{gw.url}/v1/chat/completions", json={"model": "gpt-4o-mini"},
                                headers={"Authorization": "Bearer sk-wrong", "x-litellm-tags": "ci"}) as r:
            assert r.status == 401
            assert set((await r.json())["error"]) == {"message", "type", "param", "code"}
    assert stored(gw) == [{"project": "search", "tags": ["prod"]}, {"tags": ["ci"]}]


async def test_malformed_tags_are_skipped_never_refused(gw) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {MASTER_KEY}"}) as session:
        for body in (
            {"tags": {"not": "a list"}, "metadata": {"tags": "solo"}},
            {"tags": [1, True, None, {"x": 1}, ["nested"], " ", "ok"], "metadata": "free text"},
        ):
            async with session.post(f"{gw.url}/v1/chat/completions",
                                    json={"model": "strict", "messages": PROMPT, **body}) as r:
                assert r.status == 200, await r.text()
    assert stored(gw) == [{"tags": ["solo"]}, {"metadata": "free text", "tags": ["1", "ok"]}]


def test_merge_rules() -> None:
    assert merged_metadata(None, None) is None
    assert merged_metadata({"metadata": {}}, " , ") is None
    assert merged_metadata({"metadata": {"tags": []}}, None) is None
    many = merged_metadata({"tags": [f"t{i}" for i in range(100)]}, None)
    assert many is not None and len(many["tags"]) == 64
    long = merged_metadata({"tags": ["x" * 500]}, None)
    assert long is not None and long["tags"] == ["x" * 200]
