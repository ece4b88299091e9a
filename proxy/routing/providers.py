"""Which providers the gateway can speak to, and where they live.

The gateway speaks one protocol upstream: OpenAI's. LiteLLM's `provider/name` prefixes fall
into four kinds here:
  - OpenAI-compatible with a known home (openai, text-completion-openai, groq, ...): the
    default base URL is used when config gives no api_base;
  - OpenAI-compatible with no fixed home (azure, hosted_vllm, openai_like, ...): api_base
    is required;
  - providers that need request signing we do not do (bedrock, vertex_ai, sagemaker): refused
    at start-up, api_base or not;
  - any other prefix (anthropic, gemini, cohere, ...): refused without an api_base; with one,
    the gateway starts and says once that it speaks OpenAI's format to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from yarl import URL

from ..errors import ConfigError
from ..settings import Deployment

log = logging.getLogger("proxy.routing")

OPENAI_BASE = "https://api.openai.com/v1"

# Where each OpenAI-compatible provider lives when config gives no api_base.
DEFAULT_API_BASES = {
    "openai": OPENAI_BASE,
    "text-completion-openai": OPENAI_BASE,
    "chatgpt": OPENAI_BASE,
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "together_ai": "https://api.together.xyz/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "perplexity": "https://api.perplexity.ai",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "xai": "https://api.x.ai/v1",
    "cerebras": "https://api.cerebras.ai/v1",
    "ollama": "http://localhost:11434/v1",
    "ollama_chat": "http://localhost:11434/v1",
    "lm_studio": "http://localhost:1234/v1",
}

# OpenAI-compatible, but only the operator knows where.
NEEDS_API_BASE = frozenset({
    "azure", "azure_ai", "azure_text", "hosted_vllm", "vllm", "openai_like", "custom_openai",
    "litellm_proxy", "llamafile", "xinference", "nvidia_nim", "databricks", "sambanova",
})

# Providers whose calls must be signed with cloud credentials: no api_base makes them speak OpenAI.
SIGNED = {
    "bedrock": "AWS request signing (SigV4)",
    "bedrock_converse": "AWS request signing (SigV4)",
    "sagemaker": "AWS request signing (SigV4)",
    "sagemaker_chat": "AWS request signing (SigV4)",
    "vertex_ai": "Google Cloud credentials",
    "vertex_ai_beta": "Google Cloud credentials",
}

# Providers whose path for completions (legacy text) differs from chat: the /health probe
# asks them the way they answer.
COMPLETION_PROVIDERS = frozenset({"text-completion-openai", "azure_text"})


@dataclass(frozen=True)
class Provider:
    """A deployment's provider as the hot path needs it."""

    name: str  # LiteLLM's prefix, e.g. openai, azure, groq
    upstream_model: str  # the model name sent upstream (prefix removed)
    api_base: str  # without a trailing slash

    @property
    def azure(self) -> bool:
        return self.name in ("azure", "azure_text")


def split_model(model: str) -> tuple[str, str]:
    """'groq/llama3' -> ('groq', 'llama3'); an unprefixed name is OpenAI's, as in LiteLLM."""
    provider, sep, name = model.partition("/")
    if not sep:
        return "openai", model
    return provider, name


def resolve_provider(deployment: Deployment, warned: set[str] | None = None) -> Provider:
    """Provider, upstream name and base URL; ConfigError (naming the model) when unusable."""
    params = deployment.litellm_params
    provider, name = split_model(params.model)
    label = f"model_list entry {deployment.model_name!r} ({params.model})"
    if provider in SIGNED:
        raise ConfigError(
            f"{label}: provider {provider!r} is not OpenAI-compatible (it needs "
            f"{SIGNED[provider]}), and this gateway speaks only OpenAI's API. Put an "
            "OpenAI-compatible proxy in front of it and configure that as openai/<name> with "
            "its api_base, or remove the model."
        )
    api_base = (params.api_base or DEFAULT_API_BASES.get(provider) or "").rstrip("/")
    if not api_base:
        if provider in NEEDS_API_BASE:
            raise ConfigError(
                f"{label}: litellm_params.api_base is required for provider {provider!r}"
            )
        raise ConfigError(
            f"{label}: provider {provider!r} is not OpenAI-compatible, and this gateway speaks "
            "only OpenAI's API. Give litellm_params.api_base of an OpenAI-compatible endpoint "
            "serving it, or remove the model."
        )
    known = provider in DEFAULT_API_BASES or provider in NEEDS_API_BASE
    if not known and (warned is None or provider not in warned):
        if warned is not None:
            warned.add(provider)
        log.warning(
            "provider %r (model_list entry %r) is spoken to in OpenAI's format at its api_base; "
            "LiteLLM would use %s's own API", provider, deployment.model_name, provider,
        )
    return Provider(name=provider, upstream_model=name, api_base=api_base)


def public_api_base(api_base: str) -> str:
    """The base URL without credentials: no userinfo, query or fragment (a key in the URL
    stays out of /model/info, /health and the log)."""
    url = URL(api_base)
    if not url.is_absolute():
        # No scheme (not callable, but shown in errors): drop "user:pass@" all the same.
        bare = api_base.split("?", 1)[0].split("#", 1)[0]
        head, slash, rest = bare.partition("/")
        return head.rpartition("@")[2] + slash + rest
    return str(url.with_user(None).with_query(None).with_fragment(None))
