"""Where the shared Redis is (general_settings.redis_url, LiteLLM's router_settings.redis_* and
REDIS_* variables), and its URL as logs may show it. Imports no Redis client: the SQLite path
and the CLI's help stay light."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from ...settings import Config


def redis_url(config: Config) -> str | None:
    """The Redis every gateway shares, or None (keys.db on this host).

    Config first, then the environment (LiteLLM reads the same names); a URL wins over host and
    port: general_settings.redis_url, router_settings.redis_url, router_settings.redis_host
    (+ redis_port, redis_password, each falling back to REDIS_PORT / REDIS_PASSWORD), then
    REDIS_URL, then REDIS_HOST (+ REDIS_PORT, REDIS_PASSWORD).
    """
    general, router = config.general, config.router
    url = general.redis_url or router.redis_url
    if url:
        return url
    host = router.redis_host
    if not host:
        url = config.env("REDIS_URL")
        if url:
            return url
        host = config.env("REDIS_HOST")
    if not host:
        return None
    port = router.redis_port or config.env("REDIS_PORT") or 6379
    password = router.redis_password or config.env("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""
    shown_host = f"[{host}]" if ":" in host else host
    return f"redis://{auth}{shown_host}:{port}/0"


def public_url(url: str) -> str:
    """The URL without its password, for logs and /health."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
