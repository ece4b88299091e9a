"""A deployment resolved into everything the hot path needs, computed once."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url, netrc_from_env
from yarl import URL

from .. import jsonio
from ..accounting.pricing import Price
from ..settings import Deployment
from .providers import COMPLETION_PROVIDERS, Provider, public_api_base

log = logging.getLogger("proxy.routing")


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
    #: api_base as called: without userinfo (sent as basic auth in `headers`) and without its
    #: query, which url() puts after the path.
    call_base: str = ""
    call_query: dict[str, str] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.deployment.model_name

    @functools.cached_property  # every request's row names it
    def public_api_base(self) -> str:
        """api_base as it may be shown: no credentials, no query."""
        return public_api_base(self.api_base)

    @functools.cached_property
    def default_params_plain(self) -> bool:
        """orjson writes the default request parameters as json does (jsonio.plain)."""
        return jsonio.plain(self.default_params)

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
            url = f"{self.call_base}/openai/deployments/{self.upstream_model}{path}"
        else:
            url = f"{self.call_base}{path}"
        if self.call_query:
            url += "?" + urlencode(self.call_query)
        return url


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
    call_base, query, userinfo = split_api_base(provider.api_base)
    if provider.azure and params.api_version:
        query = {**query, "api-version": params.api_version}
    proxy, proxy_auth = env_proxy(call_base)
    # Basic auth when no api_key is sent as Authorization: user:password from api_base, else
    # ~/.netrc's entry for the host (what aiohttp's trust_env would send).
    basic = userinfo or netrc_login(call_base)
    if basic is not None:
        if "Authorization" not in headers:
            headers["Authorization"] = aiohttp.encode_basic_auth(*basic)
        elif userinfo is not None:
            log.warning(
                "model %r: api_base carries a user and password and an api_key is set; the "
                "api_key is sent (Authorization: Bearer), the URL's credentials are not",
                deployment.model_name,
            )
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
        call_base=call_base,
        call_query=query,
    )


def split_api_base(api_base: str) -> tuple[str, dict[str, str], tuple[str, str] | None]:
    """(base to call, its query parameters, user:password as basic auth) of an api_base: the
    query must follow the path we append, and aiohttp refuses credentials in a URL beside an
    Authorization header."""
    url = URL(api_base)
    if not url.is_absolute():
        return api_base, {}, None
    auth = (url.user or "", url.password or "") if url.user or url.password else None
    base = str(url.with_user(None).with_query(None).with_fragment(None)).rstrip("/")
    return base, dict(url.query), auth


def env_proxy(api_base: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """(proxy, proxy_auth) for calls to `api_base`, from HTTP(S)_PROXY and NO_PROXY."""
    try:
        return get_env_proxy_for_url(URL(api_base))
    except LookupError:
        return None, None


def netrc_login(api_base: str) -> tuple[str, str] | None:
    """(login, password) of ~/.netrc (or $NETRC) for the host of `api_base`."""
    host = URL(api_base).host
    netrc = netrc_from_env() if host else None
    found = netrc.authenticators(host) if netrc is not None and host else None
    if found is None:
        return None
    login, account, password = found
    return login or account or "", password or ""
