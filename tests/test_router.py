"""Deployments resolved once: URLs, headers, environment proxies."""

from __future__ import annotations

import pytest

from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.routing.router import Router


def router(*models: dict) -> Router:
    config = parse_config({"model_list": list(models)}, env={})
    return Router(config)


def test_azure_deployment_url_and_header():
    target = router({"model_name": "gpt", "litellm_params": {
        "model": "azure/my-deploy", "api_base": "https://r.openai.azure.com/", "api_version": "2024-06-01", "api_key": "k"}}).targets("gpt")[0]
    assert target.url("/chat/completions") == "https://r.openai.azure.com/openai/deployments/my-deploy/chat/completions?api-version=2024-06-01"
    assert target.headers["api-key"] == "k" and "Authorization" not in target.headers


def test_openai_default_base_and_bearer():
    target = router({"model_name": "m", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "k"}}).targets("m")[0]
    assert target.url("/embeddings") == "https://api.openai.com/v1/embeddings"
    assert target.headers["Authorization"] == "Bearer k" and target.upstream_model == "gpt-4o-mini"


def test_provider_without_default_base_needs_api_base():
    with pytest.raises(ConfigError, match="api_base is required"):
        router({"model_name": "m", "litellm_params": {"model": "hosted_vllm/llama"}})


def test_environment_proxy_resolved_once_per_deployment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    r = router(
        {"model_name": "cloud", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "k"}},
        {"model_name": "local", "litellm_params": {"model": "openai/llama", "api_base": "http://127.0.0.1:8000/v1"}},
    )
    assert str(r.targets("cloud")[0].proxy) == "http://proxy.corp:3128"
    assert r.targets("local")[0].proxy is None
