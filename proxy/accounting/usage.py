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


def estimate(prompt_text: str, completion_text: str, extra_completion_chars: int = 0) -> TokenUsage:
    """Tokens from characters; `extra_completion_chars` is output not kept as text (reasoning)."""
    prompt = math.ceil(len(prompt_text) / CHARS_PER_TOKEN) if prompt_text else 0
    chars = len(completion_text) + extra_completion_chars
    completion = math.ceil(chars / CHARS_PER_TOKEN) if chars else 0
    return TokenUsage(prompt, completion, prompt + completion, estimated=True)


def prompt_text(body: dict[str, Any]) -> str:
    """The text a request sends, for estimates: chat messages, completion prompt or input.

    Takes any JSON the client sent (validation checks only what routing relies on), so every
    part is type-checked here: a `{"type": "text", "text": null}` part counts as no text.
    """
    if "messages" in body:
        messages = body.get("messages")
        parts: list[str] = []
        for message in messages if isinstance(messages, list) else ():
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(
                    p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
        return "\n".join(parts)
    value = body.get("prompt", body.get("input", ""))
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return ""


def response_text(payload: dict[str, Any]) -> str:
    """Text of a non-streamed chat or completion response (all choices)."""
    texts = []
    for choice in _choices(payload):
        message = choice.get("message")
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif message.get("tool_calls"):
                try:
                    texts.append(json.dumps(message["tool_calls"]))
                except RecursionError:  # an upstream's deeply nested JSON: text unknown
                    pass
        elif isinstance(choice.get("text"), str):
            texts.append(choice["text"])
    return "\n".join(texts)


def delta_text(chunk: dict[str, Any]) -> str:
    """Text carried by one streamed chunk."""
    out = []
    for choice in _choices(chunk):
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str):
                out.append(content)
        elif isinstance(choice.get("text"), str):
            out.append(choice["text"])
    return "".join(out)


#: Fields of a message or delta that carry the model's reasoning (DeepSeek, vLLM; OpenRouter).
REASONING_FIELDS = ("reasoning_content", "reasoning")


def reasoning_chars(message: dict[str, Any]) -> int:
    """Characters of reasoning in a message or delta: completion output, not response text."""
    return sum(len(v) for f in REASONING_FIELDS if isinstance(v := message.get(f), str))


def response_extra_chars(payload: dict[str, Any]) -> int:
    """Output characters of a non-streamed response that `response_text` leaves out:
    reasoning, and tool calls beside a text answer."""
    chars = 0
    for choice in _choices(payload):
        message = choice.get("message")
        if not isinstance(message, dict):
            continue
        chars += reasoning_chars(message)
        if isinstance(message.get("content"), str) and message.get("tool_calls"):
            try:
                chars += len(json.dumps(message["tool_calls"]))
            except RecursionError:
                pass
    return chars


class StreamedOutput:
    """Everything a stream's chunks generate besides its text: tool calls and reasoning.

    Tool calls arrive as deltas keyed by index (id and name first, then the arguments in
    pieces); they are put back together so a streamed row stores the same JSON as a
    non-streamed one (`response_text` writes `message.tool_calls`).
    """

    __slots__ = ("reasoning_chars", "_calls")

    def __init__(self) -> None:
        self.reasoning_chars = 0
        self._calls: dict[tuple[int, int], dict[str, Any]] = {}

    def feed(self, chunk: dict[str, Any]) -> bool:
        """Take one chunk's tool-call and reasoning deltas; True when it carried any."""
        found = False
        for n, choice in enumerate(_choices(chunk)):
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            chars = reasoning_chars(delta)
            if chars:
                self.reasoning_chars += chars
                found = True
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                index = choice.get("index")
                for position, call in enumerate(calls):
                    if isinstance(call, dict):
                        found = self._add(index if isinstance(index, int) else n, position, call) or found
        return found

    def _add(self, choice: int, position: int, delta: dict[str, Any]) -> bool:
        function = delta.get("function")
        pieces = [
            (f, v) for f in ("name", "arguments")
            if isinstance(function, dict) and isinstance(v := function.get(f), str)
        ]
        call_id = delta.get("id")
        if not pieces and not isinstance(call_id, str):
            return False  # nothing a tool call is made of
        index = delta.get("index")
        key = (choice, index if isinstance(index, int) else position)
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        if isinstance(call_id, str):
            call["id"] = call_id
        if isinstance(delta.get("type"), str):
            call["type"] = delta["type"]
        for field, value in pieces:
            call["function"][field] += value
        return bool(pieces)

    def tool_calls_json(self) -> str:
        """The tool calls as `response_text` stores a non-streamed message's; '' when none."""
        if not self._calls:
            return ""
        return json.dumps([self._calls[key] for key in sorted(self._calls)])

    def finish(self, text: str) -> tuple[str, int]:
        """(response text, output characters beside it), by `response_text`'s rule: the
        text when there is any, else the tool calls' JSON."""
        calls = self.tool_calls_json()
        if text:
            return text, self.reasoning_chars + len(calls)
        return calls, self.reasoning_chars


def _choices(payload: dict[str, Any]) -> list[dict[str, Any]]:
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return []
    return [c for c in choices if isinstance(c, dict)]


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an upstream's 1e999
        return 0
