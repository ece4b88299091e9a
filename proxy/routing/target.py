"""A deployment resolved into everything the hot path needs, computed once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url, netrc_from_env
from yarl import URL

from ..accounting.pricing import Price
from ..settings import Deployment
from .providers import COMPLETION_PROVIDERS, Provider, public_api_base


@dataclass(frozen=True)
class Target:
    """One deployment as the upstream call sees it."""

    deployment: Deployment
    deployment_id: str
    provider: str
    upstream_model: str  # the model name sent upstream (provider prefix removed)
    api_base: str
    headers: dict[str, str]
    timeout: float
    stream_timeout: float
    price: Price
    azure: bool = False
    api_version: str | None = None
    #: litellm_params that are OpenAI request parameters: sent unless the client set them.
    default_params: dict[str, Any] = field(default_factory=dict)
    # What aiohttp's trust_env would do, resolved once: HTTP(S)_PROXY/NO_PROXY and ~/.netrc.
    proxy: URL | None = None
    proxy_auth: aiohttp.BasicAuth | None = None
    auth: aiohttp.BasicAuth | None = None

    @property
    def model_name(self) -> str:
        return self.deployment.model_name

    @property
    def public_api_base(self) -> str:
        """api_base as it may be shown: no credentials, no query."""
        return public_api_base(self.api_base)

    @property
    def mode(self) -> str:
        """chat, completion or embedding: model_info.mode, else guessed from the names."""
        if self.deployment.model_info.mode:
            return self.deployment.model_info.mode
        if self.provider in COMPLETION_PROVIDERS:
            return "completion"
        name = f"{self.deployment.model_name} {self.upstream_model}".lower()
        return "embedding" if "embed" in name else "chat"

    def url(self, path: str) -> str:
        """Upstream URL for an OpenAI path such as '/chat/completions'."""
        if self.azure:
            query = f"?api-version={self.api_version}" if self.api_version else ""
            return f"{self.api_base}/openai/deployments/{self.upstream_model}{path}{query}"
        return f"{self.api_base}{path}"


def build_target(
    deployment: Deployment,
    provider: Provider,
    price: Price,
    default_timeout: float,
    deployment_id: str,
) -> Target:
    params = deployment.litellm_params
    # identity: we read usage out of every body, and compressing on loopback or a LAN
    # costs more CPU than it saves.
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity", **params.extra_headers}
    if params.api_key:
        if provider.azure:
            headers["api-key"] = params.api_key
        else:
            headers["Authorization"] = f"Bearer {params.api_key}"
    timeout = params.timeout or default_timeout
    proxy, proxy_auth, auth = env_route(provider.api_base, authorized="Authorization" in headers)
    return Target(
        deployment=deployment,
        deployment_id=deployment_id,
        provider=provider.name,
        upstream_model=provider.upstream_model,
        api_base=provider.api_base,
        headers=headers,
        timeout=timeout,
        stream_timeout=params.stream_timeout or timeout,
        price=price,
        azure=provider.azure,
        api_version=params.api_version,
        default_params=dict(params.extra),
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


def deployment_id(deployment: Deployment, seen: dict[str, int]) -> str:
    """model_info.id, else a stable hash of what the deployment is (never of its api_key), made
    unique among identical entries by their order: the same config gives the same ids."""
    if deployment.model_info.id:
        return str(deployment.model_info.id)
    params = deployment.litellm_params
    shape = json.dumps(
        [deployment.model_name, params.model, params.api_base and public_api_base(params.api_base),
         params.api_version],
        sort_keys=True,
    )
    digest = hashlib.sha256(shape.encode("utf-8")).hexdigest()
    count = seen.get(digest, 0)
    seen[digest] = count + 1
    if count:
        digest = hashlib.sha256(f"{digest}:{count}".encode()).hexdigest()
    return digest[:32]
