"""Today's live traffic: real openai SDK calls through the real gateway.

A deterministic mix (seeded): chat, streaming chat (with and without usage), embeddings, and
the failures a team meets: an unknown model (404), a bad key (401), a model outside a key's
list (401), an upstream that answers 503, an upstream too slow for its timeout (504), and a
key running through its budget (429).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import openai

from ..history import PROJECTS

CHAT_MODELS = ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "llama3-local")
PROMPTS = (
    "Summarise yesterday's incident report",
    "Write a haiku about SQLite",
    "Which of these invoices is overdue?",
    "Translate 'good morning' into Japanese",
    "Suggest three names for the new service",
    "Explain WAL mode in one paragraph",
)
#: (kind, weight). Failures are a few percent each, as on a real day.
MIX = (
    ("chat", 44), ("stream", 24), ("embed", 14), ("intern", 5), ("unknown_model", 3),
    ("bad_key", 3), ("flaky", 3), ("forbidden", 2), ("slow", 2),
)


@dataclass(frozen=True)
class Caller:
    key: str
    user: str | None  # sent as the body's `user` (the key's own user_id wins in the log)


def callers(master_key: str, raw_keys: dict[str, str] | None) -> dict[str, list[Caller]]:
    if not raw_keys:
        everyone = [Caller(master_key, u) for u in ("alice", "bob", "carol", "dave", "ci-bot")]
        return {"team": everyone, "ci": everyone, "intern": [Caller(master_key, "erin")]}
    return {
        "team": [Caller(raw_keys["team-web"], "alice"), Caller(raw_keys["team-web"], "bob"),
                 Caller(raw_keys["team-data"], "carol"), Caller(raw_keys["team-data"], "dave"),
                 Caller(master_key, None)],
        "ci": [Caller(raw_keys["ci"], None)],
        "intern": [Caller(raw_keys["intern"], None)],
    }


async def run_traffic(base_url: str, master_key: str, raw_keys: dict[str, str] | None,
                      requests: int, *, concurrency: int = 8, seed: int = 11) -> Counter[str]:
    """Send `requests` calls; returns a count per outcome ('200', '404', ...)."""
    rng = random.Random(seed)
    who = callers(master_key, raw_keys)
    clients: dict[str, openai.AsyncOpenAI] = {}

    def client(key: str) -> openai.AsyncOpenAI:
        if key not in clients:
            clients[key] = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=key,
                                              max_retries=0, timeout=30)
        return clients[key]

    kinds, weights = zip(*MIX, strict=True)
    jobs = [_job(rng, kind, who, client) for kind in rng.choices(kinds, weights, k=requests)]
    outcomes: Counter[str] = Counter()
    queue: asyncio.Queue[Callable[[], Coroutine[Any, Any, None]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            try:
                await job()
                outcomes["200"] += 1
            except openai.APIStatusError as exc:
                outcomes[str(exc.status_code)] += 1

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        for c in clients.values():
            await c.close()
    return outcomes


def _job(rng: random.Random, kind: str, who: dict[str, list[Caller]],
         client: Callable[[str], openai.AsyncOpenAI]) -> Callable[[], Coroutine[Any, Any, None]]:
    caller = rng.choice(who["team"])
    prompt = rng.choice(PROMPTS)
    model = rng.choice(CHAT_MODELS)
    messages = [{"role": "user", "content": prompt}]
    extra: dict[str, Any] = {"user": caller.user} if caller.user else {}
    if caller.user in PROJECTS:  # tagged as a team tags requests: body metadata and the header
        project, features = PROJECTS[caller.user]
        extra["extra_body"] = {"metadata": {"project": project, "feature": features[0],
                                            "environment": "production"}}
        extra["extra_headers"] = {"x-litellm-tags": f"live,{'interactive' if kind == 'stream' else 'batch'}"}

    if kind == "chat":
        return lambda: _chat(client(caller.key), model, messages, extra)
    if kind == "stream":
        usage = rng.random() < 0.7
        return lambda: _stream(client(caller.key), model, messages, extra, usage)
    if kind == "embed":
        ci = rng.choice(who["ci"])
        return lambda: _embed(client(ci.key), [prompt, prompt[::-1]])
    if kind == "intern":  # the expensive model until the tiny budget is gone, then 429s
        intern = who["intern"][0]
        return lambda: _chat(client(intern.key), "gpt-4o", messages, {"user": "erin"})
    if kind == "unknown_model":
        return lambda: _chat(client(caller.key), "gpt-5-turbo", messages, extra)
    if kind == "bad_key":
        return lambda: _chat(client("sk-not-a-real-key-0000"), model, messages, {})
    if kind == "flaky":
        return lambda: _chat(client(caller.key), "flaky-model", messages, extra)
    if kind == "forbidden":  # the CI key may not use the expensive models
        ci = rng.choice(who["ci"])
        return lambda: _chat(client(ci.key), "claude-3-5-sonnet", messages, {})
    if kind == "slow":
        return lambda: _chat(client(caller.key), "slow-model", messages, extra)
    raise ValueError(kind)


async def _chat(c: openai.AsyncOpenAI, model: str, messages: list[dict[str, str]],
                extra: dict[str, Any]) -> None:
    reply = await c.chat.completions.create(model=model, messages=messages, **extra)  # type: ignore[arg-type]
    assert reply.choices


async def _stream(c: openai.AsyncOpenAI, model: str, messages: list[dict[str, str]],
                  extra: dict[str, Any], usage: bool) -> None:
    options = {"stream_options": {"include_usage": True}} if usage else {}
    stream = await c.chat.completions.create(model=model, messages=messages, stream=True,  # type: ignore[arg-type]
                                             **options, **extra)
    async for _chunk in stream:
        pass


async def _embed(c: openai.AsyncOpenAI, texts: list[str]) -> None:
    result = await c.embeddings.create(model="text-embedding-3-small", input=texts)
    assert result.data
