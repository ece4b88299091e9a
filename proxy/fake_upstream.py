"""A fast, deterministic OpenAI-compatible provider for tests, the demo and benchmarks.

The upstream model name steers behaviour, so a config can point a model at a failure:
  error-<status>     always answers that HTTP status with an OpenAI error body
  slow-<seconds>     waits that long before answering (timeouts)
  nousage            never reports usage (the gateway must estimate); also inside another name
  toolcall           answers with a tool call whose arguments carry the reply (streamed in pieces)
  reasoning          thinks first: the reply words also arrive as `reasoning_content`
  echo               replies with the request body it received, as JSON text (not streamed)
  cutoff             streams a few chunks, then drops the connection
  strict             rejects stream_options (as some older servers do) and LiteLLM's `tags` with 400
  context-window     answers 400 context_length_exceeded, as OpenAI does for a too-long prompt
  content-policy     answers 400 content_policy_violation, as OpenAI's safety system does
  hugeusage          reports "prompt_tokens": 1e19 (past SQLite's 64-bit integers)
  cached             reports half the prompt as cached (usage.prompt_tokens_details); also inside another name
Anything else answers normally. Replies are derived from the prompt, so they repeat exactly.
Answers carry OpenAI's x-ratelimit-* headers, counting down per request and token served.

  python -m proxy.fake_upstream --port 9000 --latency 0.05 --error-rate 0.02 --stream-chunks 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

WORDS = (
    "the gateway logs every request so that cost latency and errors are visible to the team "
    "while the report shows trends per model user and key with charts tables and exports"
).split()


@dataclass(frozen=True)
class FakeOptions:
    latency: float = 0.0  # seconds before the first byte
    chunk_delay: float = 0.0  # seconds between streamed chunks
    stream_chunks: int = 12
    completion_words: int = 12
    error_rate: float = 0.0  # fraction of requests answered 500, deterministic by count
    embedding_dims: int = 8


# OpenAI's own 400s for the two refusals LiteLLM has fallback lists for.
REFUSALS = {
    "context-window": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded",
    },
    "content-policy": {
        "message": "Your request was rejected as a result of our safety system.",
        "type": "invalid_request_error", "param": None, "code": "content_policy_violation",
    },
}

OPTIONS: web.AppKey[FakeOptions] = web.AppKey("fake_options")
COUNTER: web.AppKey[list[int]] = web.AppKey("fake_counter")
#: Tokens served so far, for x-ratelimit-remaining-tokens.
TOKENS: web.AppKey[list[int]] = web.AppKey("fake_tokens")
RATE_LIMIT_REQUESTS = 10_000
RATE_LIMIT_TOKENS = 2_000_000
#: The last requests received, (path, body): tests check what the gateway sent.
SEEN: web.AppKey[deque[tuple[str, dict[str, Any]]]] = web.AppKey("fake_seen")
#: The same requests' path with query string and Authorization scheme and user ("Basic u",
#: "Bearer" — never a secret): tests check how the gateway called.
CALLS: web.AppKey[deque[tuple[str, str]]] = web.AppKey("fake_calls")


def _auth_shape(request: web.Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return "Basic " + base64.b64decode(value).decode().partition(":")[0]
        except ValueError:
            return "Basic ?"
    return scheme


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _prompt(body: dict[str, Any]) -> str:
    if "messages" in body:
        return " ".join(
            str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict)
        )
    value = body.get("prompt", body.get("input", ""))
    return value if isinstance(value, str) else json.dumps(value)


def _reply_words(prompt: str, count: int) -> list[str]:
    seed = int.from_bytes(hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()[:4], "big")
    return [WORDS[(seed + i * 7) % len(WORDS)] for i in range(count)]


def _ratelimit(request: web.Request, tokens: int) -> dict[str, str]:
    """OpenAI's rate-limit headers: what is left of this minute's requests and tokens."""
    served = request.app[TOKENS]
    served[0] += tokens
    return {
        "x-ratelimit-limit-requests": str(RATE_LIMIT_REQUESTS),
        "x-ratelimit-limit-tokens": str(RATE_LIMIT_TOKENS),
        "x-ratelimit-remaining-requests": str(max(0, RATE_LIMIT_REQUESTS - request.app[COUNTER][0])),
        "x-ratelimit-remaining-tokens": str(max(0, RATE_LIMIT_TOKENS - served[0])),
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-reset-tokens": "12ms",
    }


def _error(status: int, message: str) -> web.Response:
    kind = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}, status=status
    )


async def _preamble(request: web.Request) -> tuple[dict[str, Any], str] | web.Response:
    options = request.app[OPTIONS]
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        return _error(400, "invalid JSON")
    model = str(body.get("model", ""))
    request.app[SEEN].append((request.path, body))
    request.app[CALLS].append((request.path_qs, _auth_shape(request)))
    counter = request.app[COUNTER]
    counter[0] += 1
    if model.startswith("error-"):
        return _error(int(model.split("-", 1)[1]), f"fake upstream error for {model}")
    # Exactly floor(n * rate) failures in the first n requests, evenly spread (integer steps:
    # the float remainder test failed 32 of 2,000 at 1 %).
    if options.error_rate and int(counter[0] * options.error_rate) > int((counter[0] - 1) * options.error_rate):
        return _error(500, "fake upstream: injected failure")
    if model in REFUSALS:
        return web.json_response({"error": REFUSALS[model]}, status=400)
    if model == "strict" and "stream_options" in body:
        return _error(400, "Unrecognized request argument supplied: stream_options")
    if model == "strict" and "tags" in body:  # as OpenAI answers LiteLLM-only fields
        return _error(400, "Unrecognized request argument supplied: tags")
    delay = float(model.split("-", 1)[1]) if model.startswith("slow-") else options.latency
    if delay:
        await asyncio.sleep(delay)
    return body, model


async def chat(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=False)


async def _complete(request: web.Request, *, chat: bool) -> web.StreamResponse:
    pre = await _preamble(request)
    if isinstance(pre, web.Response):
        return pre
    body, model = pre
    options = request.app[OPTIONS]
    prompt = _prompt(body)
    created = int(time.time())
    rid = "chatcmpl-" + hashlib.sha1(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    obj = "chat.completion" if chat else "text_completion"
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    if body.get("stream"):
        count = options.stream_chunks
    else:
        count = options.completion_words
    if isinstance(max_tokens, int) and max_tokens > 0:
        count = min(count, max_tokens)
    words = _reply_words(prompt, count)
    if model == "echo":
        words = [json.dumps(body, sort_keys=True)]
    usage = {
        "prompt_tokens": _tokens(prompt),
        "completion_tokens": len(words),
        "total_tokens": _tokens(prompt) + len(words),
    }
    if model == "hugeusage":  # a provider's bug, or a hostile one: 1e19 is a JSON float
        usage = {"prompt_tokens": 1e19, "completion_tokens": len(words), "total_tokens": 1e19}
    report_usage = "nousage" not in model
    tool_call = chat and "toolcall" in model
    reasoning = chat and "reasoning" in model
    if reasoning:
        usage["completion_tokens"] += len(words)
        usage["total_tokens"] += len(words)
        usage["completion_tokens_details"] = {"reasoning_tokens": len(words)}
    if "cached" in model:
        usage["prompt_tokens_details"] = {"cached_tokens": usage["prompt_tokens"] // 2}
    headers = _ratelimit(request, _tokens(prompt) + len(words))
    if not body.get("stream"):
        text = " ".join(words)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_call:
            message = {"role": "assistant", "content": None, "tool_calls": [_tool_call(rid, json.dumps({"query": text}))]}
        if reasoning:
            message["reasoning_content"] = text
        choice = (
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_call else "stop"}
            if chat
            else {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        )
        payload: dict[str, Any] = {"id": rid, "object": obj, "created": created, "model": model, "choices": [choice]}
        if report_usage:
            payload["usage"] = usage
        return web.json_response(payload, headers=headers)

    include_usage = report_usage and bool((body.get("stream_options") or {}).get("include_usage"))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers})
    await response.prepare(request)
    chunk_obj = "chat.completion.chunk" if chat else "text_completion"
    if reasoning:
        for i, word in enumerate(words):
            delta = {"reasoning_content": word if i == 0 else " " + word}
            thought = {"id": rid, "object": chunk_obj, "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            if include_usage:
                thought["usage"] = None
            await response.write(b"data: " + json.dumps(thought, separators=(",", ":")).encode() + b"\n\n")
    if tool_call:  # the arguments stream in pieces: '{"query": "', then the words, then '"}'
        words = ['{"query": "' + words[0], *words[1:], '"}']
    for i, word in enumerate(words):
        piece = word if i == 0 or word == '"}' else " " + word
        choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None} if chat else {
            "index": 0, "text": piece, "finish_reason": None}
        if tool_call:
            call = {"index": 0, **(_tool_call(rid, piece) if i == 0 else {"function": {"arguments": piece}})}
            choice["delta"] = {"content": None, "tool_calls": [call]}
        if chat and i == 0:
            choice["delta"]["role"] = "assistant"
        chunk: dict[str, Any] = {"id": rid, "object": chunk_obj, "created": created, "model": model, "choices": [choice]}
        if include_usage:
            chunk["usage"] = None
        await response.write(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
        if model == "cutoff" and i == 2:
            assert request.transport is not None
            request.transport.close()  # a provider dying mid-answer
            return response
        if options.chunk_delay:
            await asyncio.sleep(options.chunk_delay)
    final = {"index": 0, "delta": {}, "finish_reason": "tool_calls" if tool_call else "stop"} if chat else {"index": 0, "text": "", "finish_reason": "stop"}
    last: dict[str, Any] = {"id": rid, "object": chunk_obj, "created": created, "model": model, "choices": [final]}
    if include_usage:
        last["usage"] = None
    await response.write(b"data: " + json.dumps(last, separators=(",", ":")).encode() + b"\n\n")
    if include_usage:
        tail = {"id": rid, "object": chunk_obj, "created": created, "model": model, "choices": [], "usage": usage}
        await response.write(b"data: " + json.dumps(tail, separators=(",", ":")).encode() + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def _tool_call(rid: str, arguments: str) -> dict[str, Any]:
    return {"id": "call_" + rid[-12:], "type": "function",
            "function": {"name": "lookup", "arguments": arguments}}


async def embeddings(request: web.Request) -> web.Response:
    pre = await _preamble(request)
    if isinstance(pre, web.Response):
        return pre
    body, model = pre
    inputs = body.get("input", "")
    items = inputs if isinstance(inputs, list) else [inputs]
    dims = request.app[OPTIONS].embedding_dims
    data = []
    for index, item in enumerate(items):
        digest = hashlib.sha256(str(item).encode("utf-8", "surrogatepass")).digest()
        data.append({"object": "embedding", "index": index, "embedding": [b / 255 for b in digest[:dims]]})
    tokens = sum(_tokens(str(i)) for i in items)
    payload: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if "nousage" not in model:
        payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return web.json_response(payload, headers=_ratelimit(request, tokens))


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]})


def create_fake_app(options: FakeOptions | None = None) -> web.Application:
    app = web.Application()
    app[OPTIONS] = options or FakeOptions()
    app[COUNTER] = [0]
    app[TOKENS] = [0]
    app[SEEN] = deque(maxlen=200)
    app[CALLS] = deque(maxlen=200)
    for prefix in ("", "/v1"):
        app.router.add_post(f"{prefix}/chat/completions", chat)
        app.router.add_post(f"{prefix}/completions", completions)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
        app.router.add_get(f"{prefix}/models", models)
    # Azure's layout: the deployment in the path (as LiteLLM's azure/ configs reach it).
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
    app.router.add_post("/openai/deployments/{deployment}/completions", completions)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", embeddings)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m proxy.fake_upstream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between stream chunks")
    parser.add_argument("--stream-chunks", type=int, default=12, help="content chunks per stream")
    parser.add_argument("--completion-words", type=int, default=12, help="words per non-streamed answer")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction answered with HTTP 500")
    args = parser.parse_args(argv)
    options = FakeOptions(
        latency=args.latency,
        chunk_delay=args.chunk_delay,
        stream_chunks=args.stream_chunks,
        completion_words=args.completion_words,
        error_rate=args.error_rate,
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    # shutdown_timeout: a fake has nothing to finish; a slow-60 answer must not hold up a test.
    web.run_app(create_fake_app(options), host=args.host, port=args.port, access_log=None, shutdown_timeout=1,
                # aiohttp's banner carries the bound address: the real port when --port 0.
                print=lambda banner: print("fake upstream: " + banner.splitlines()[0].strip("= "), flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
