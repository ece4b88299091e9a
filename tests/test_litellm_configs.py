"""LiteLLM's own example configs (tests/litellm_configs/, see its README) start on this gateway
and answer a chat request through the official SDK, or are refused with a plain message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.routing.providers import DEFAULT_API_BASES, split_model
from proxy.server.app import create_app

CONFIGS = Path(__file__).parent / "litellm_configs"

#: file -> the model a client asks for, or (None, the model_name the refusal names).
EXPECTED: dict[str, tuple[str | None, str]] = {
    "proxy_server_config.yaml": (None, "sagemaker-completion-model"),
    "load_balancer.yaml": (None, "mistral-7b-instruct"),
    "oai_misc_config.yaml": (None, "anthropic/*"),
    "simple_config.yaml": ("gpt-3.5-turbo", ""),
    "aliases_config.yaml": ("gpt-4", ""),
    "azure_config.yaml": ("gpt-4-team1", ""),
    "azure_config_with_tpm.yaml": ("gpt-3.5-turbo", ""),
    "multi_instance_simple_config.yaml": ("fake-openai-endpoint", ""),
    "prometheus_test_config.yaml": ("fake-openai-endpoint", ""),
    "spend_tracking_config.yaml": ("fake-openai-endpoint", ""),
    "_health_check_test_config.yaml": ("text-embedding-ada-002", ""),
    "store_model_db_config.yaml": ("fake-openai-endpoint", ""),
    "docs_load_balancing.yaml": ("gpt-4", ""),  # an alias of gpt-3.5-turbo
    "docs_hide_alias_models.yaml": ("GPT-3.5-turbo", ""),
    "docs_reliability_fallbacks.yaml": ("gpt-3.5-turbo", ""),
}


def test_every_kept_config_has_an_expectation():
    assert {p.name for p in CONFIGS.glob("*.yaml")} == set(EXPECTED)
    assert len(EXPECTED) >= 10


def point_at(raw: dict[str, Any], root: str) -> dict[str, Any]:
    """Send every deployment the gateway would reach to the fake upstream at `root`."""
    for item in raw.get("model_list") or []:
        params = item.setdefault("litellm_params", {})
        provider, _ = split_model(str(params.get("model", "")))
        base = f"{root}/v1" if not provider.startswith("azure") else root  # Azure: /openai/deployments/…
        given = params.get("api_base")
        if isinstance(given, str) and given.startswith("os.environ/"):
            continue  # set through the environment below
        if given or provider in DEFAULT_API_BASES:
            params["api_base"] = base
    return raw


def environment(text: str, root: str) -> dict[str, str]:
    env = {name: f"placeholder-{name.lower()}" for name in re.findall(r"os\.environ/(\w+)", text)}
    env.update(FAKE_OPENAI_API_BASE=f"{root}/v1", AZURE_API_BASE=root)
    return env


def point_at_redis(raw: dict[str, Any], env: dict[str, str], url: str) -> None:
    """A config naming a Redis (LiteLLM's router_settings.redis_*) gets a real one: the test's."""
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    router = raw.get("router_settings") or {}
    for key, value in (("redis_host", host), ("redis_port", int(port)), ("redis_password", None)):
        if key in router:
            router[key] = value
    env.update(REDIS_HOST=host, REDIS_PORT=port, REDIS_PASSWORD="")


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_litellm_example_config(name, aiohttp_server, fake_upstream, tmp_path, request):
    ask, refused_model = EXPECTED[name]
    text = (CONFIGS / name).read_text()
    root = str(fake_upstream.make_url("")).rstrip("/")
    raw = point_at(yaml.safe_load(text), root)
    env = environment(text, root)
    if "redis_host" in text:
        point_at_redis(raw, env, request.getfixturevalue("redis_server").url)
    config = parse_config(raw, env=env, source=name)

    if ask is None:
        with pytest.raises(ConfigError) as info:
            create_app(config, db_path=tmp_path / "litellm.db")
        message = str(info.value)
        assert f"{refused_model!r}" in message and "not OpenAI-compatible" in message, message
        return

    server = await aiohttp_server(create_app(config, db_path=tmp_path / "litellm.db"))
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")),
                                api_key=config.general.master_key or "anything", max_retries=0)
    try:
        reply = await client.chat.completions.create(
            model=ask, messages=[{"role": "user", "content": "what llm are you"}])
    finally:
        await client.close()
    assert reply.choices[0].message.content and reply.usage.total_tokens > 0
