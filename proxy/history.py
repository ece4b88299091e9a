"""A deterministic, realistic request history: fixtures, the demo and the benchmarks share it.

`generate_history(days=30, rows=20_000, seed=7, now=...)` yields RequestRecords in timestamp
order with: diurnal and weekly traffic, several models (one unpriced local model whose tokens
are partly estimated, one embedding model), users and virtual keys, streams with time to first
token, a background of errors (429/500/502/504/400) plus one upstream outage, and one cost
spike (a user running a big batch on the most expensive model), request metadata (project,
feature, environment, tags) and the gateway's own few milliseconds. The same arguments always give
the same records, so tests and benchmarks can pin them.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from proxy.logdb.record import RequestRecord, utc_timestamp


@dataclass(frozen=True)
class ModelProfile:
    name: str
    provider: str
    upstream: str
    weight: float
    input_price: float  # USD per token; 0 with cost_status 'unpriced'
    output_price: float
    latency: float  # median seconds for a typical reply
    embedding: bool = False


MODELS: tuple[ModelProfile, ...] = (
    ModelProfile("gpt-4o-mini", "openai", "openai/gpt-4o-mini", 0.38, 0.15e-6, 0.6e-6, 1.1),
    ModelProfile("gpt-4o", "openai", "openai/gpt-4o", 0.18, 2.5e-6, 10e-6, 2.4),
    ModelProfile("claude-3-5-sonnet", "anthropic", "anthropic/claude-3-5-sonnet-20241022",
                 0.16, 3e-6, 15e-6, 2.9),
    ModelProfile("llama3-local", "ollama", "ollama/llama3", 0.14, 0.0, 0.0, 3.6),
    ModelProfile("text-embedding-3-small", "openai", "openai/text-embedding-3-small",
                 0.14, 0.02e-6, 0.0, 0.25, embedding=True),
)

#: (user_id, key_alias, weight). None user: requests made with the master key.
USERS: tuple[tuple[str | None, str | None, float], ...] = (
    ("alice", "team-web", 0.26),
    ("bob", "team-web", 0.18),
    ("carol", "team-data", 0.2),
    ("dave", "team-data", 0.12),
    ("ci-bot", "ci", 0.16),
    (None, None, 0.08),
)

PROMPTS: tuple[str, ...] = (
    "Summarise this support ticket in two sentences",
    "Translate the release notes into German",
    "Write a SQL query that counts orders per day",
    "Explain the difference between TCP and UDP",
    "Draft a polite reply declining the meeting",
    "Classify the sentiment of these reviews",
    "Generate unit tests for the parser module",
    "What changed between v1.2 and v1.3?",
)

#: user -> (project, features) of the request metadata; the master key's requests are untagged.
PROJECTS: dict[str | None, tuple[str, tuple[str, ...]]] = {
    "alice": ("web-app", ("chat-assistant", "search", "summaries")),
    "bob": ("web-app", ("chat-assistant", "search")),
    "carol": ("analytics", ("reports", "classification")),
    "dave": ("analytics", ("reports",)),
    "ci-bot": ("ci", ("test-generation",)),
}

#: (status, error_type, message, weight) for the background error rate.
ERRORS: tuple[tuple[int, str, str, float], ...] = (
    (429, "rate_limit_error", "Rate limit reached for requests", 0.45),
    (500, "internal_error", "Upstream returned an internal error", 0.15),
    (502, "upstream_error", "Bad gateway: upstream connection reset", 0.15),
    (504, "timeout", "Upstream did not answer within 30s", 0.1),
    (400, "invalid_request_error", "This model's maximum context length is 128000 tokens", 0.15),
)


def _diurnal(hour_of_day: int, weekday: int) -> float:
    # Office-hours peak around 14:00 UTC with a quiet night; weekends at 40 %.
    day = 0.15 + math.exp(-((hour_of_day - 14) ** 2) / 18.0)
    return day * (0.4 if weekday >= 5 else 1.0)


def _pick(rng: random.Random, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


def generate_history(
    *,
    days: int = 30,
    rows: int = 20_000,
    seed: int = 7,
    now: float | None = None,
    error_rate: float = 0.03,
    store_prompts: bool = True,
) -> Iterator[RequestRecord]:
    """Yield `rows` records spread over the `days` days before `now` (epoch seconds)."""
    if days <= 0 or rows < 0:
        raise ValueError("days must be > 0 and rows >= 0")
    rng = random.Random(seed)
    # Metadata and gateway overhead draw from their own stream, so every other field is the
    # same as before they existed (tests pin those).
    extra_rng = random.Random(seed * 7919 + 1)
    end = float(int(time.time() if now is None else now))
    start = end - days * 86400
    hours = days * 24
    # Each day gets its own level (busy and quiet days) on a slow growth trend.
    day_level = [rng.uniform(0.8, 1.2) * (0.85 + 0.3 * d / days) for d in range(days)]
    weights = []
    for h in range(hours):
        moment = time.gmtime(start + h * 3600)
        weights.append(_diurnal(moment.tm_hour, moment.tm_wday) * day_level[h // 24])
    total = sum(weights)
    # Largest-remainder rounding: exactly `rows` records whatever the weights.
    exact = [rows * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(hours), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: rows - sum(counts)]:
        counts[i] += 1

    spike_day = int(days * 0.3)  # days before `now`
    outage_hour = hours - int(hours * 0.55)  # a two-hour anthropic outage
    model_weights = [m.weight for m in MODELS]
    user_weights = [u[2] for u in USERS]
    error_weights = [e[3] for e in ERRORS]
    key_hashes = {alias: hashlib.sha256(f"sk-demo-{alias}".encode()).hexdigest()
                  for _, alias, _ in USERS if alias}
    serial = 0
    for h, count in enumerate(counts):
        offsets = sorted(rng.random() * 3600 for _ in range(count))
        days_ago = (hours - 1 - h) // 24
        for offset in offsets:
            serial += 1
            epoch = start + h * 3600 + offset
            model = _pick(rng, MODELS, model_weights)
            user, alias, _ = _pick(rng, USERS, user_weights)
            spike = days_ago == spike_day and user == "carol" and rng.random() < 0.6
            if spike:
                model = MODELS[2]
            record = _record(rng, serial, seed, epoch, model, user, alias,
                             key_hashes.get(alias or ""), spike,
                             outage=model.provider == "anthropic" and outage_hour <= h < outage_hour + 2,
                             error_rate=error_rate, error_weights=error_weights,
                             store_prompts=store_prompts)
            _add_extras(extra_rng, record, user, spike)
            yield record


def _record(rng: random.Random, serial: int, seed: int, epoch: float, model: ModelProfile,
            user: str | None, alias: str | None, key_hash: str | None, spike: bool, *,
            outage: bool, error_rate: float, error_weights: list[float],
            store_prompts: bool) -> RequestRecord:
    prompt = PROMPTS[rng.randrange(len(PROMPTS))]
    prompt_tokens = int(rng.lognormvariate(5.5, 0.8)) + 8
    if spike:
        prompt_tokens *= 12
    stream = 0 if model.embedding else int(rng.random() < 0.4)
    completion_tokens = 0 if model.embedding else int(rng.lognormvariate(5.0, 0.7)) + 1
    latency = model.latency * rng.lognormvariate(0.0, 0.45) * (1 + completion_tokens / 900)
    ttft = round(min(latency, 0.12 + rng.expovariate(1 / 0.35)), 4) if stream else None
    failed = outage and rng.random() < 0.7 or rng.random() < error_rate
    record = RequestRecord(
        timestamp=utc_timestamp(epoch),
        request_id=f"hist-{seed}-{serial:08d}",
        endpoint="/v1/embeddings" if model.embedding else "/v1/chat/completions",
        model=model.name,
        user_id=user,
        messages=json.dumps([{"role": "user", "content": prompt}]) if store_prompts else None,
        stream=stream,
        key_hash=key_hash,
        key_alias=alias,
        provider=model.provider,
        upstream_model=model.upstream,
        client_ip=f"10.0.{serial % 7}.{serial % 199 + 1}",
    )
    if failed:
        status, error_type, message, _ = (
            (502, "upstream_error", "Bad gateway: upstream connection reset", 0)
            if outage else _pick(rng, ERRORS, error_weights)
        )
        record.status_code = status
        record.error_type = error_type
        record.response = message
        record.latency = round(30.0 if status == 504 else latency * rng.random() * 0.3 + 0.01, 4)
        # Each of these reached the provider (its errors, a reset, a timeout): it was waited on.
        record.upstream_latency = round(record.latency * 0.97, 4)
        # Failed requests carry no usage (as the gateway logs them): 0 tokens, no cost.
        record.cost_status = "none" if model.input_price else "unpriced"
        return record
    record.status_code = 200
    record.response = "[embedding]" if model.embedding else f"Here is the answer to: {prompt}"
    record.latency = round(latency, 4)
    record.time_to_first_token = ttft
    record.upstream_latency = round(latency, 4)  # less the gateway's overhead: _add_extras
    record.prompt_tokens = prompt_tokens
    record.completion_tokens = completion_tokens
    record.total_tokens = prompt_tokens + completion_tokens
    record.cached_tokens = prompt_tokens // 2 if rng.random() < 0.1 else 0
    if model.input_price:
        record.cost = round(prompt_tokens * model.input_price
                            + completion_tokens * model.output_price, 8)
        record.cost_status = "priced"
    else:
        # The local model has no price and streams without usage: tokens are estimated.
        record.cost_status = "unpriced"
        record.tokens_estimated = stream
    return record


def _add_extras(rng: random.Random, record: RequestRecord, user: str | None, spike: bool) -> None:
    """Request metadata as clients tag it (project, feature, environment, tags), and the few
    milliseconds the gateway adds on top of the upstream's time."""
    if record.upstream_latency is not None:
        overhead = 0.0006 + rng.lognormvariate(math.log(0.0015), 0.6)
        record.upstream_latency = round(max(0.0, record.latency - overhead), 4)
    if user not in PROJECTS:
        return
    project, features = PROJECTS[user]
    feature = "batch-summarise" if spike else features[rng.randrange(len(features))]
    environment = "ci" if project == "ci" else "staging" if rng.random() < 0.2 else "production"
    tags = ["interactive" if record.stream else "batch"]
    if rng.random() < 0.3:
        tags.append("eu")
    record.metadata = json.dumps({"project": project, "feature": feature,
                                  "environment": environment, "tags": tags}, sort_keys=True)
