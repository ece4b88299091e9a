"""Helpers for the virtual-key tests: a gateway config with priced and slow models, admin
calls with aiohttp, and an openai SDK client per virtual key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import openai

from proxy.admin.routes import ADMIN

from .conftest import MASTER_KEY, Gateway, default_raw_config

PRICED = "house-model"  # config prices: 1e-6 USD per prompt token, 2e-6 per completion token
SLOW = "slow-half"  # the fake upstream waits 0.5 s
PROMPT = [{"role": "user", "content": "What did the nightly build cost?"}]


def keys_config(upstream_base: str, dead_base: str, **litellm_settings: Any) -> dict[str, Any]:
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append({
        "model_name": SLOW,
        "litellm_params": {"model": "openai/slow-0.5", "api_base": upstream_base,
                           "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002},
    })
    if litellm_settings:
        raw["litellm_settings"] = litellm_settings
    return raw


async def admin(
    gw: Gateway, method: str, path: str, *, token: str | None = MASTER_KEY, **kwargs: Any
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, gw.url + path, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(), dict(resp.headers)


async def generate(gw: Gateway, **fields: Any) -> dict[str, Any]:
    status, body, _ = await admin(gw, "POST", "/key/generate", json=fields)
    assert status == 200, body
    assert body["key"].startswith("sk-")
    return body


async def chat(gw: Gateway, key: str, model: str = PRICED) -> tuple[int, Any, dict[str, str]]:
    """One chat completion with raw aiohttp, for status codes and headers."""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            gw.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "messages": PROMPT},
        ) as resp:
            return resp.status, await resp.json(), dict(resp.headers)


@asynccontextmanager
async def sdk(gw: Gateway, key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10)
    try:
        yield client
    finally:
        await client.close()


async def key_info(gw: Gateway, key: str) -> dict[str, Any]:
    status, body, _ = await admin(gw, "GET", "/key/info", params={"key": key})
    assert status == 200, body
    return body["info"]


async def settle(gw: Gateway) -> None:
    """Every logged row committed and every spend counter written to keys.db."""
    await asyncio.to_thread(gw.flush)
    await gw.app[ADMIN].flush()


async def sleep_until(epoch: float) -> None:
    await asyncio.sleep(max(0.0, epoch - time.time()) + 0.05)


async def chat_body(gw: Gateway, key: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """One chat completion with a body of our own (a `user`, metadata, another model)."""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
            json={"model": PRICED, "messages": PROMPT, **body},
        ) as resp:
            return resp.status, await resp.json(), dict(resp.headers)


async def ok(gw: Gateway, method: str, path: str, **kwargs: Any) -> Any:
    """An admin call that must succeed; its JSON body."""
    status, body, _ = await admin(gw, method, path, **kwargs)
    assert status == 200, (path, body)
    return body
