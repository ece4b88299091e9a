"""GET /v1/models/{model} (the SDK's models.retrieve), /model/info and /model_group/info in
LiteLLM's shapes, without secrets."""

from __future__ import annotations

import aiohttp
import openai
import pytest
from genai_prices import Usage, calc_price

from .conftest import MASTER_KEY, default_raw_config
from .keys_helpers import generate, sdk


async def get(gw, path, token=MASTER_KEY, **params):
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.url + path, headers={"Authorization": f"Bearer {token}"}, params=params) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    raw = default_raw_config(upstream_base, dead_base)
    netloc = upstream_base.split("://", 1)[1]
    raw["model_list"] += [
        {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_base": upstream_base}},
        {"model_name": "keyed-url", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": f"http://user:url-secret@{netloc}?key=query-secret",
            "extra_headers": {"X-Upstream-Token": "header-secret"}, "rpm": 60, "tpm": 1000},
         "model_info": {"access_groups": ["beta"], "description": "our own note"}},
    ]
    raw["router_settings"] = {"model_group_alias": {"gpt-4": "gpt-4o-mini"}}
    return await gateway_factory(raw)


async def test_models_retrieve_with_the_sdk(gw):
    for name in ("gpt-4o-mini", "gpt-4", "openai/gpt-4o"):  # a model, an alias, a wildcard's name
        model = await gw.client.models.retrieve(name)
        assert (model.id, model.object) == (name, "model")
    with pytest.raises(openai.NotFoundError) as info:
        await gw.client.models.retrieve("claude-3")
    assert info.value.code == "model_not_found"


async def test_model_info_lists_deployments_without_secrets(gw):
    status, body = await get(gw, "/model/info")
    assert status == 200
    text = str(body)
    for secret in ("sk-upstream-secret", "url-secret", "query-secret", "header-secret", "api_key"):
        assert secret not in text
    entries = {e["model_name"]: e for e in body["data"]}
    mini = entries["gpt-4o-mini"]
    per_million = calc_price(Usage(input_tokens=1_000_000, output_tokens=0), "gpt-4o-mini", provider_id="openai")
    assert mini["model_info"]["input_cost_per_token"] == pytest.approx(float(per_million.total_price) / 1e6)
    assert mini["model_info"]["max_input_tokens"] == 128000 and mini["model_info"]["mode"] == "chat"
    assert mini["model_info"]["litellm_provider"] == "openai" and mini["litellm_params"]["model"] == "openai/gpt-4o-mini"
    assert entries["gpt-4"]["model_info"]["id"] == mini["model_info"]["id"]  # the alias, listed too
    house = entries["house-model"]["model_info"]
    assert (house["input_cost_per_token"], house["output_cost_per_token"]) == (1e-6, 2e-6)
    keyed = entries["keyed-url"]
    assert "@" not in keyed["litellm_params"]["api_base"] and "?" not in keyed["litellm_params"]["api_base"]
    assert keyed["model_info"]["access_groups"] == ["beta"] and keyed["model_info"]["description"] == "our own note"
    assert entries["text-embedding-3-small"]["model_info"]["mode"] == "embedding"
    assert entries["openai/*"]["model_info"]["input_cost_per_token"] is None
    assert keyed["deployment_state"]["enabled"] is True  # the master key sees run-time state

    ident = mini["model_info"]["id"]
    status, one = await get(gw, "/v1/model/info", litellm_model_id=ident)
    assert status == 200 and {e["model_name"] for e in one["data"]} == {"gpt-4o-mini", "gpt-4"}
    assert (await get(gw, "/model/info", litellm_model_id="nope"))[0] == 404


async def test_model_group_info(gw):
    status, body = await get(gw, "/model_group/info")
    assert status == 200
    groups = {g["model_group"]: g for g in body["data"]}
    assert {"gpt-4o-mini", "gpt-4", "openai/*", "keyed-url"} <= set(groups)
    keyed = groups["keyed-url"]
    assert keyed["providers"] == ["openai"] and (keyed["rpm"], keyed["tpm"]) == (60, 1000)
    assert keyed["mode"] == "chat" and keyed["max_input_tokens"] == 128000 and "temperature" in keyed["supported_openai_params"]
    assert groups["text-embedding-3-small"]["mode"] == "embedding"
    status, one = await get(gw, "/v1/model_group/info", model_group="house-model")
    assert status == 200 and [g["model_group"] for g in one["data"]] == ["house-model"]


async def test_a_key_sees_only_its_models(gw):
    key = (await generate(gw, models=["gpt-4o-mini"]))["key"]
    status, body = await get(gw, "/model/info", token=key)
    assert status == 200 and {e["model_name"] for e in body["data"]} == {"gpt-4o-mini"}
    assert "deployment_state" not in body["data"][0]
    async with sdk(gw, key) as client:
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("house-model")
    assert (await get(gw, "/model_group/info", token="sk-nobody"))[0] == 401
