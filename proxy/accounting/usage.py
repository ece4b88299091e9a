"""Token counts from upstream responses, and an estimate when the upstream gives none."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# ~4 characters per token is OpenAI's own rule of thumb for English; good enough to keep a
# row from claiming zero usage, and flagged as estimated so no one mistakes it for a bill.
CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False


def from_openai(usage: Any) -> TokenUsage | None:
    """Read an OpenAI `usage` object (chat, completions, embeddings)."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    total = _int(usage.get("total_tokens")) or prompt + completion
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_tokens=_int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0,
        reasoning_tokens=_int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else 0,
    )


def estimate(prompt_text: str, completion_text: str) -> TokenUsage:
    prompt = math.ceil(len(prompt_text) / CHARS_PER_TOKEN) if prompt_text else 0
    completion = math.ceil(len(completion_text) / CHARS_PER_TOKEN) if completion_text else 0
    return TokenUsage(prompt, completion, prompt + completion, estimated=True)


def prompt_text(body: dict[str, Any]) -> str:
    """The text a request sends, for estimates: chat messages, completion prompt or input."""
    if "messages" in body:
        parts = []
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
        return "\n".join(parts)
    value = body.get("prompt", body.get("input", ""))
    return value if isinstance(value, str) else json.dumps(value)


def response_text(payload: dict[str, Any]) -> str:
    """Text of a non-streamed chat or completion response (all choices)."""
    texts = []
    for choice in payload.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif message.get("tool_calls"):
                texts.append(json.dumps(message["tool_calls"]))
        elif isinstance(choice.get("text"), str):
            texts.append(choice["text"])
    return "\n".join(texts)


def delta_text(chunk: dict[str, Any]) -> str:
    """Text carried by one streamed chunk."""
    out = []
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str):
                out.append(content)
        elif isinstance(choice.get("text"), str):
            out.append(choice["text"])
    return "".join(out)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
