"""Which upstream serves a request: deployments grouped by model_name, taken in turn."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url, netrc_from_env
from yarl import URL

from ..accounting.pricing import Price, PriceBook
from ..errors import NotFound
from ..settings import Config, Deployment

# Where each provider lives when config gives no api_base.
DEFAULT_API_BASES = {
    "openai": "https://api.openai.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "together_ai": "https://api.together.xyz/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "ollama": "http://localhost:11434/v1",
    "ollama_chat": "http://localhost:11434/v1",
}


@dataclass(frozen=True)
class Target:
    """A deployment resolved into everything the hot path needs, computed once."""

    deployment: Deployment
    provider: str
    upstream_model: str  # the model name sent upstream (provider prefix removed)
    api_base: str
    headers: dict[str, str]
    timeout: float
    stream_timeout: float
    price: Price
    azure: bool = False
    api_version: str | None = None
    # What aiohttp's trust_env would do, resolved once: HTTP(S)_PROXY/NO_PROXY and ~/.netrc.
    proxy: URL | None = None
    proxy_auth: aiohttp.BasicAuth | None = None
    auth: aiohttp.BasicAuth | None = None

    @property
    def model_name(self) -> str:
        return self.deployment.model_name

    def url(self, path: str) -> str:
        """Upstream URL for an OpenAI path such as '/chat/completions'."""
        if self.azure:
            query = f"?api-version={self.api_version}" if self.api_version else ""
            return f"{self.api_base}/openai/deployments/{self.upstream_model}{path}{query}"
        return f"{self.api_base}{path}"


def build_target(deployment: Deployment, price: Price, default_timeout: float) -> Target:
    params = deployment.litellm_params
    provider, sep, name = params.model.partition("/")
    if not sep:
        provider, name = "openai", params.model
    api_base = (params.api_base or DEFAULT_API_BASES.get(provider) or "").rstrip("/")
    if not api_base:
        from ..errors import ConfigError

        raise ConfigError(
            f"model {deployment.model_name!r}: litellm_params.api_base is required for provider {provider!r}"
        )
    azure = provider == "azure"
    # identity: we read usage out of every body, and compressing on loopback or a LAN
    # costs more CPU than it saves.
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity", **params.extra_headers}
    if params.api_key:
        if azure:
            headers["api-key"] = params.api_key
        else:
            headers["Authorization"] = f"Bearer {params.api_key}"
    timeout = params.timeout or default_timeout
    proxy, proxy_auth, auth = env_route(api_base, authorized="Authorization" in headers)
    return Target(
        deployment=deployment,
        provider=provider,
        upstream_model=name,
        api_base=api_base,
        headers=headers,
        timeout=timeout,
        stream_timeout=params.stream_timeout or timeout,
        price=price,
        azure=azure,
        api_version=params.api_version,
        proxy=proxy,
        proxy_auth=proxy_auth,
        auth=auth,
    )


def env_route(
    api_base: str, *, authorized: bool
) -> tuple[URL | None, aiohttp.BasicAuth | None, aiohttp.BasicAuth | None]:
    """(proxy, proxy_auth, netrc auth) for calls to `api_base`, from the environment."""
    url = URL(api_base)
    try:
        proxy, proxy_auth = get_env_proxy_for_url(url)
    except LookupError:
        proxy, proxy_auth = None, None
    auth = None
    # aiohttp refuses netrc credentials beside an Authorization header; an api_key wins.
    if not authorized and url.host:
        netrc = netrc_from_env()
        found = netrc.authenticators(url.host) if netrc is not None else None
        if found is not None:
            login, account, password = found
            auth = aiohttp.BasicAuth(login or account or "", password or "")
    return proxy, proxy_auth, auth


class Router:
    def __init__(self, config: Config, prices: PriceBook) -> None:
        default_timeout = config.litellm.request_timeout or config.general.request_timeout
        groups: dict[str, list[Target]] = {}
        for deployment in config.models:
            target = build_target(deployment, prices.for_deployment(deployment), default_timeout)
            groups.setdefault(deployment.model_name, []).append(target)
        self._groups = groups
        self._cycles: dict[str, Iterator[int]] = {
            name: itertools.cycle(range(len(targets))) for name, targets in groups.items()
        }
        self.max_retries = config.litellm.num_retries
        #: ids of targets that reject stream_options (learnt at run time; usage then estimated).
        self.usage_unsupported: set[int] = set()

    @property
    def model_names(self) -> list[str]:
        return sorted(self._groups)

    def targets(self, model: str) -> list[Target]:
        """Deployments for `model` in round-robin order, starting with this request's turn."""
        group = self._groups.get(model)
        if group is None:
            available = ", ".join(self.model_names) or "none configured"
            raise NotFound(
                f"The model `{model}` does not exist. Available models: {available}.",
                param="model",
            )
        if len(group) == 1:
            return group
        start = next(self._cycles[model])
        return group[start:] + group[:start]
