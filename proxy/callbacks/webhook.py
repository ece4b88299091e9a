"""Delivery over HTTP (shared by every channel) and the generic JSON webhook.

`webhook` (also `generic`, `generic_api`, LiteLLM's name) POSTs one JSON document per batch to
GENERIC_LOGGER_ENDPOINT, with optional headers from GENERIC_LOGGER_HEADERS
("Name=value,Other=value"). Webhook URLs are secrets (Slack's carries its token): they are never
logged, and error messages name the channel instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from ..errors import ConfigError
from .batch import FAILURE, SLOW, SUCCESS, Batch

log = logging.getLogger("proxy.callbacks")

ENDPOINT_ENV = "GENERIC_LOGGER_ENDPOINT"
HEADERS_ENV = "GENERIC_LOGGER_HEADERS"
MAX_RETRY_AFTER = 30.0


class DeliveryFailed(Exception):
    """A channel could not deliver after its retries; the message is lost (and logged)."""


def check_url(url: str, source: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{source}: expected an http(s):// URL")
    return url


def parse_headers(raw: str | None, source: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{source}: expected Name=value pairs separated by commas")
        headers[name.strip()] = value.strip()
    return headers


async def post_json(
    session: aiohttp.ClientSession,
    channel: str,
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    attempts: int = 4,
    backoff: float = 0.5,
) -> None:
    """POST with retries on connection errors, timeouts, 429 and 5xx (exponential backoff,
    Retry-After honoured up to 30 s). Raises DeliveryFailed when every attempt failed."""
    reason = "not attempted"
    for attempt in range(1, attempts + 1):
        delay = backoff * 2 ** (attempt - 1)
        try:
            async with session.post(url, json=payload, headers=headers) as resp:
                if resp.status < 300:
                    return
                reason = f"HTTP {resp.status}"
                if resp.status != 429 and resp.status < 500:
                    raise DeliveryFailed(f"{channel}: {reason} (not retried)")
                retry_after = resp.headers.get("Retry-After", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = min(float(retry_after), MAX_RETRY_AFTER)
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = type(exc).__name__
        if attempt < attempts:
            log.info("%s: delivery attempt %d/%d failed (%s); retrying in %.1fs",
                     channel, attempt, attempts, reason, delay)
            await asyncio.sleep(delay)
    raise DeliveryFailed(f"{channel}: {reason} after {attempts} attempt(s)")


class WebhookChannel:
    """Every event of the batch as JSON (up to the batch's cap), plus per-group totals."""

    name = "webhook"
    burst = 1  # one POST per batch window is the only limit a machine consumer needs
    per_minute = 0.0

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers

    @classmethod
    def from_env(cls, env: Any, source: str) -> WebhookChannel:
        url = env(ENDPOINT_ENV)
        if not url:
            raise ConfigError(
                f"{source}: 'webhook' needs {ENDPOINT_ENV} (environment_variables or the environment)"
            )
        return cls(check_url(url, ENDPOINT_ENV), parse_headers(env(HEADERS_ENV), HEADERS_ENV))

    def render(self, batch: Batch, title: str) -> dict[str, Any]:
        return {
            "source": title,
            "sent_at": round(time.time(), 3),
            "counts": {kind: batch.count(kind) for kind in (FAILURE, SUCCESS, SLOW)},
            "events": [e.as_json() for e in batch.events] + [b.as_json() for b in batch.budgets],
            "events_not_listed": batch.unlisted,
            "events_lost": batch.lost,
        }

    async def deliver(self, session: aiohttp.ClientSession, payload: dict[str, Any], **retry: Any) -> None:
        await post_json(session, self.name, self.url, payload, headers=self.headers, **retry)
