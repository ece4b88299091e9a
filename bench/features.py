"""The gateway as the benchmarks measure it: every feature on, against the fake upstream.

- auth: a virtual key (keys.db) with a budget and rpm / tpm / parallel limits, so every
  request is looked up, checked against budgets and limits, and charged;
- pricing: the models are priced by genai-prices (`gpt-4o-mini`; the slow model prices as
  it through `model_info.base_model`);
- the request log with prompts and answers stored (`store_prompts`), the access log in a
  file (buffered), /metrics (always on) and the gateway-wide budget (`max_budget`).

Two models: MODEL answers at once, SLOW_MODEL after SLOW_SECONDS (the fake upstream's
`slow-<seconds>` model names: the same latency the `--latency` option adds, chosen per
request, so one fake upstream serves both scenarios and the body is the same whoever relays
it — direct, the aiohttp floor, nginx or the gateway).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

MODEL = "gpt-4o-mini"
SLOW_SECONDS = 0.05
SLOW_MODEL = f"slow-{SLOW_SECONDS:g}"
MASTER_KEY = "sk-bench-master"
#: Limits high enough never to refuse a bench request, low enough to be checked on each one.
KEY_SETTINGS = {
    "key_alias": "bench",
    "max_budget": 1_000_000.0,
    "budget_duration": "30d",
    "rpm_limit": 100_000_000,
    "tpm_limit": 10_000_000_000,
    "max_parallel_requests": 100_000,
}

PROMPT = [
    {"role": "system", "content": "You are a concise assistant for an engineering team."},
    {"role": "user", "content": "Summarise why request logging must never slow down a gateway."},
]


def gateway_config(upstream_port: int) -> str:
    """config.yaml (JSON is YAML) of a gateway with every feature on."""
    base = f"http://127.0.0.1:{upstream_port}/v1"
    return json.dumps(
        {
            "model_list": [
                {"model_name": MODEL, "litellm_params": {
                    "model": f"openai/{MODEL}", "api_base": base, "api_key": "sk-fake-upstream"}},
                {"model_name": SLOW_MODEL, "litellm_params": {
                    "model": f"openai/{SLOW_MODEL}", "api_base": base, "api_key": "sk-fake-upstream"},
                 "model_info": {"base_model": MODEL}},
            ],
            "general_settings": {"master_key": MASTER_KEY, "log_level": "INFO", "store_prompts": True},
            "litellm_settings": {"max_budget": 1_000_000.0, "budget_duration": "30d"},
        },
        indent=2,
    )


def create_virtual_key(base_url: str) -> str:
    """A virtual key with a budget and limits (POST /key/generate with the master key)."""
    request = urllib.request.Request(
        f"{base_url}/key/generate", data=json.dumps(KEY_SETTINGS).encode(), method="POST",
        headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["key"])


def chat_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": PROMPT}
    if stream:
        body["stream"] = True
    return body
