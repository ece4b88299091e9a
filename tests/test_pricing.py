"""Prices resolve once per deployment and always equal what genai-prices says."""

from __future__ import annotations

import pytest
from genai_prices import Usage, calc_price

from proxy.accounting.pricing import resolve_price
from proxy.config import parse_config


def price_for(model: str, **params):
    config = parse_config({"model_list": [{"model_name": "x", "litellm_params": {"model": model, "api_base": "http://up", **params}}]}, env={})
    return resolve_price(config.models[0])


@pytest.mark.parametrize("model, provider, flat", [
    ("openai/gpt-4o-mini", "openai", True),
    ("anthropic/claude-3-5-sonnet", "anthropic", True),
    ("openai/text-embedding-3-small", "openai", True),
    ("gemini/gemini-1.5-pro", "google", False),  # tiered above 128k tokens: the library decides
])
@pytest.mark.parametrize("prompt, completion, cached", [(1000, 500, 0), (5000, 10, 4000), (300_000, 2_000, 0), (1, 0, 0)])
def test_cost_equals_genai_prices(model, provider, flat, prompt, completion, cached):
    price = price_for(model)
    assert price.status == "priced" and (price.linear is not None) == flat
    usage = Usage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached or None)
    expected = float(calc_price(usage, model.split("/", 1)[1], provider_id=provider).total_price)
    assert price.cost(prompt, completion, cached) == (pytest.approx(expected, rel=1e-12), "priced")


def test_config_price_overrides_the_library():
    price = price_for("openai/gpt-4o-mini", input_cost_per_token=0.5, output_cost_per_token=1)
    assert price.cost(2, 3) == (4.0, "config")


def test_unknown_model_is_unpriced_never_guessed():
    assert price_for("openai/my-house-llm").cost(100, 100) == (0.0, "unpriced")
    # a public name that happens to be priced is not used for a self-hosted model
    config = parse_config({"model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "hosted_vllm/qwen", "api_base": "http://up"}}]}, env={})
    assert resolve_price(config.models[0]).status == "unpriced"


def test_base_model_prices_a_custom_alias():
    assert price_for("azure/prod-deployment-7", api_version="1").status == "unpriced"
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "azure/prod-deployment-7", "api_base": "http://up"},
                                           "model_info": {"base_model": "gpt-4o-mini"}}]}, env={})
    assert resolve_price(config.models[0]).status == "priced"
