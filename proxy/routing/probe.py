"""LiteLLM's per-deployment health check: a tiny real request to each deployment.

Chat models get one message with `max_tokens: 1`, completion models a one-word prompt with
`max_tokens: 1`, embedding models one word: the cheapest question each can answer. Probes run
concurrently, each bounded by `health_check_timeout` (or the deployment's
`model_info.health_check_timeout`, and never longer than its own timeout), and a result is reused for `health_check_interval`
seconds, so a monitor polling /health does not turn into traffic. Probes are not requests:
they are not logged, charged to a key, or counted towards cooldowns.

Wildcard deployments (`model: openai/*`) have no model to ask until a client names one: the
full check skips them; `/health?model=NAME` probes them for NAME.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from .router import Router
from .target import Target
from .upstream import upstream_payload
from .wildcards import is_pattern

log = logging.getLogger("proxy.health")

PROBE_TEXT = "ping"
#: (path, body) per mode; anything unknown is asked as chat, as LiteLLM does.
PROBES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/chat/completions", {"messages": [{"role": "user", "content": PROBE_TEXT}], "max_tokens": 1}),
    "completion": ("/completions", {"prompt": PROBE_TEXT, "max_tokens": 1}),
    "embedding": ("/embeddings", {"input": PROBE_TEXT}),
}


class HealthProbe:
    def __init__(
        self,
        router: Router,
        session: Callable[[], aiohttp.ClientSession],
        *,
        interval: float,
        timeout: float,
    ) -> None:
        self.router = router
        self.session = session
        self.interval = interval
        self.timeout = timeout
        self._results: dict[str | None, tuple[float, dict[str, Any]]] = {}
        self._running: dict[str | None, asyncio.Task[dict[str, Any]]] = {}

    async def check(self, model: str | None = None, *, fresh: bool = False) -> dict[str, Any]:
        """{healthy_endpoints, unhealthy_endpoints, healthy_count, unhealthy_count} for every
        deployment, or those serving `model` (NotFound when nothing does)."""
        targets = self._targets(model)
        cached = self._results.get(model)
        if cached and not fresh and time.monotonic() - cached[0] < self.interval:
            return cached[1]
        task = self._running.get(model)
        if task is None:  # concurrent callers share one round of probes
            task = asyncio.ensure_future(self._probe_all(targets))
            self._running[model] = task
            task.add_done_callback(lambda _t: self._running.pop(model, None))
        result = await asyncio.shield(task)
        self._results[model] = (time.monotonic(), result)
        return result

    def _targets(self, model: str | None) -> list[Target]:
        if model is not None:
            return self.router.enabled_targets(model)[1]
        return [
            t for t in self.router.deployments()
            if self.router.state(t.deployment_id).enabled
            and not is_pattern(t.model_name) and "*" not in t.deployment.litellm_params.model
        ]

    async def _probe_all(self, targets: list[Target]) -> dict[str, Any]:
        results = await asyncio.gather(*(self._probe(t) for t in targets))
        healthy = [entry for ok, entry in results if ok]
        unhealthy = [entry for ok, entry in results if not ok]
        return {
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy),
            "unhealthy_count": len(unhealthy),
        }

    async def _probe(self, target: Target) -> tuple[bool, dict[str, Any]]:
        mode = target.mode if target.mode in PROBES else "chat"
        path, body = PROBES[mode]
        entry: dict[str, Any] = {
            "model": target.deployment.litellm_params.model,
            "model_name": target.model_name,
            "model_id": target.deployment_id,
            "api_base": target.public_api_base,
            "custom_llm_provider": target.provider,
            "mode": mode,
        }
        # A deployment slower than its own timeout fails real requests: it fails the probe too.
        limit = min(target.deployment.model_info.health_check_timeout or self.timeout, target.timeout)
        started = time.monotonic()
        try:
            async with self.session().post(
                target.url(path), data=upstream_payload(body, target, include_usage=False),
                headers=target.headers, timeout=aiohttp.ClientTimeout(total=limit),
                proxy=target.proxy, proxy_auth=target.proxy_auth,
            ) as response:
                raw = await response.read()
                entry["latency"] = round(time.monotonic() - started, 4)  # seconds, the UI shows it
                if response.status < 400:
                    return True, entry
                entry["error"] = _error_text(response.status, raw)
        except TimeoutError:
            entry["error"] = f"Timeout: no answer within {limit:g}s"
        except aiohttp.ClientError as exc:
            entry["error"] = f"Unreachable: {type(exc).__name__}"
        log.warning("health probe failed for %s (%s): %s", target.model_name,
                    target.public_api_base, entry["error"])
        return False, entry


def _error_text(status: int, raw: bytes) -> str:
    try:
        body = json.loads(raw)
        message = body["error"]["message"] if isinstance(body.get("error"), dict) else body.get("error")
    except (ValueError, AttributeError, KeyError, TypeError):
        message = None
    text = str(message) if message else raw.decode("utf-8", "replace").strip()[:300]
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"
