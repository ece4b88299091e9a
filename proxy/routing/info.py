"""What /model/info and /model_group/info say about deployments, in LiteLLM's shapes.

Secrets never appear: no api_key, no extra_headers values, api_base without credentials or
query. Prices and context windows come from config, else genai-prices (what the gateway bills
with); a wildcard deployment has none until a client names a model.
"""

from __future__ import annotations

from typing import Any

from genai_prices.data_snapshot import get_snapshot

from ..accounting.pricing import CONFIG, PRICED, Price
from .router import Router
from .target import Target

#: The OpenAI request parameters passed through to an OpenAI-compatible upstream, by mode.
OPENAI_PARAMS = {
    "chat": ["frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
             "max_completion_tokens", "n", "presence_penalty", "response_format", "seed", "stop",
             "stream", "stream_options", "temperature", "top_p", "tools", "tool_choice",
             "parallel_tool_calls", "user", "reasoning_effort"],
    "completion": ["best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens",
                   "n", "presence_penalty", "seed", "stop", "stream", "suffix", "temperature",
                   "top_p", "user"],
    "embedding": ["dimensions", "encoding_format", "user"],
}
#: litellm_params shown by /model/info (never api_key or extra_headers).
SHOWN_PARAMS = ("model", "api_version", "timeout", "stream_timeout", "rpm", "tpm", "weight",
                "input_cost_per_token", "output_cost_per_token")


def per_token(price: Price) -> tuple[float | None, float | None]:
    """(input, output) USD per token, when the price is flat."""
    if price.status == CONFIG:
        return price.input_per_token, price.output_per_token
    if price.status == PRICED and price.linear is not None:
        return float(price.linear[0]), float(price.linear[1])
    return None, None


def context_window(price: Price) -> int | None:
    if price.status != PRICED or not price.matched:
        return None
    provider_id, _, model_id = price.matched.partition("/")
    try:
        _, model = get_snapshot().find_provider_model(model_id, None, provider_id, None)
    except LookupError:
        return None
    return model.context_window


def deployment_info(router: Router, target: Target, *, model_name: str | None = None,
                    admin: bool = False) -> dict[str, Any]:
    """One /model/info entry: model_name, litellm_params (no secrets), model_info."""
    deployment = target.deployment
    params = deployment.litellm_params
    shown: dict[str, Any] = {name: getattr(params, name) for name in SHOWN_PARAMS
                             if getattr(params, name) is not None}
    shown["api_base"] = target.public_api_base
    shown.update(target.default_params)
    input_cost, output_cost = per_token(target.price)
    info = deployment.model_info
    model_info: dict[str, Any] = {
        "id": target.deployment_id,
        "db_model": target.deployment_id in router.db_models,
        "key": target.price.matched or params.model,
        "mode": target.mode,
        "base_model": info.base_model,
        "access_groups": list(info.access_groups),
        "litellm_provider": target.provider,
        "max_input_tokens": context_window(target.price),
        "max_output_tokens": None,
        "max_tokens": None,
        "input_cost_per_token": input_cost,
        "output_cost_per_token": output_cost,
        "cost_status": target.price.status,
        "supported_openai_params": OPENAI_PARAMS.get(target.mode, OPENAI_PARAMS["chat"]),
        "health_check_timeout": info.health_check_timeout,
        **info.extra,  # the operator's own model_info keys win
    }
    entry: dict[str, Any] = {
        "model_name": model_name or deployment.model_name,
        "litellm_params": shown,
        "model_info": model_info,
    }
    if admin:
        state = router.state(target.deployment_id)
        entry["deployment_state"] = {
            "enabled": state.enabled, "in_flight": state.in_flight, "successes": state.successes,
            "failures": state.failures, "cooling_down": state.cooling(),
            "cooldowns": sum(state.cooldowns.values()),
        }
    return entry


def group_info(router: Router, name: str, group: str) -> dict[str, Any]:
    """One /model_group/info entry (LiteLLM's ModelGroupInfo) for `name`, served by `group`."""
    targets = router.deployments(group)
    entries = [deployment_info(router, t) for t in targets]
    infos = [e["model_info"] for e in entries]

    def first(key: str) -> Any:
        return next((i[key] for i in infos if i.get(key) is not None), None)

    def total(key: str) -> int | None:
        values = [getattr(t.deployment.litellm_params, key) for t in targets]
        return sum(values) if values and all(v is not None for v in values) else None

    mode = first("mode") or "chat"
    return {
        "model_group": name,
        "providers": sorted({t.provider for t in targets}),
        "max_input_tokens": first("max_input_tokens"),
        "max_output_tokens": first("max_output_tokens"),
        "input_cost_per_token": first("input_cost_per_token"),
        "output_cost_per_token": first("output_cost_per_token"),
        "mode": mode,
        "tpm": total("tpm"),
        "rpm": total("rpm"),
        "supports_parallel_function_calling": False,
        "supports_vision": False,
        "supports_function_calling": False,
        "supported_openai_params": OPENAI_PARAMS.get(mode, OPENAI_PARAMS["chat"]),
        "access_groups": sorted({g for i in infos for g in i["access_groups"]}),
    }
