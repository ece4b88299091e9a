"""What the gateway shows about its configuration: no credentials from an api_base in the log,
/spend/logs or gateway.log, and an unknown-model 404 that names only the key's own models."""

from __future__ import annotations

import openai
import pytest
from yarl import URL

from .conftest import default_raw_config
from .keys_helpers import admin, generate, sdk

SECRETS = ("basic-user", "basic-pass", "qs-secret")


async def test_api_base_credentials_are_never_stored_or_logged(
    gateway_factory, upstream_base, dead_base, gateway_log
):
    up, dead = URL(upstream_base), URL(dead_base)
    with_creds = f"http://basic-user:basic-pass@{up.host}:{up.port}{up.path}"
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"] = gateway_log.start(raw["general_settings"])
    raw["model_list"] += [
        # no api_key: the userinfo is what authenticates these (aiohttp sends it as Basic auth)
        {"model_name": "with-creds", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": with_creds}},
        {"model_name": "with-query", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                         "api_base": with_creds + "?token=qs-secret"}},
        {"model_name": "dead-creds", "litellm_params": {
            "model": "openai/gpt-4o-mini",
            "api_base": f"http://basic-user:basic-pass@{dead.host}:{dead.port}/v1?token=qs-secret"}},
    ]
    gw = await gateway_factory(raw)
    prompt = [{"role": "user", "content": "hi"}]
    for model in ("with-creds", "with-query"):
        reply = await gw.client.chat.completions.create(model=model, messages=prompt)
        assert reply.choices  # the upstream is still called with its credentials (and query)
    with pytest.raises(openai.APIStatusError):
        await gw.client.chat.completions.create(model="dead-creds", messages=prompt)
    rows = gw.rows()
    assert [r["api_base"] for r in rows] == [f"http://{up.host}:{up.port}/v1"] * 2 + [f"http://{dead.host}:{dead.port}/v1"]
    assert not any(s in str(v) for r in rows for v in dict(r).values() for s in SECRETS)
    status, logs, _ = await admin(gw, "GET", "/spend/logs")
    assert status == 200 and len(logs) == 3
    assert not any(s in str(logs) for s in SECRETS)
    text = gateway_log.stop()
    assert "unreachable" in text  # the dead upstream's warning names its public URL only
    assert not any(s in text for s in SECRETS)


async def test_unknown_model_404_lists_only_the_keys_models(gateway):
    # The key may ask for gpt-5-ultra (its list names it) but no deployment serves it.
    key = await generate(gateway, models=["gpt-4o-mini", "house-model", "gpt-5-ultra"])
    prompt = [{"role": "user", "content": "hi"}]
    async with sdk(gateway, key["key"]) as client:
        visible = sorted(m.id for m in (await client.models.list()).data)
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(model="gpt-5-ultra", messages=prompt)
    assert visible == ["gpt-4o-mini", "house-model"]
    message = info.value.body["message"]
    assert message == "The model `gpt-5-ultra` does not exist. Available models: gpt-4o-mini, house-model."
    assert "local-llama" not in message and info.value.body["param"] == "model"
    # the master key still sees every model
    with pytest.raises(openai.NotFoundError) as info:
        await gateway.client.chat.completions.create(model="gpt-5-ultra", messages=prompt)
    assert "local-llama" in info.value.body["message"]
