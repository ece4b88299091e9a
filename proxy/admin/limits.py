"""Per-key rate limits: `rpm_limit`, `tpm_limit`, `max_parallel_requests` → 429 + Retry-After.

Windows slide over the last 60 s (no burst of 2×limit at a minute boundary, as fixed windows
allow). Tokens are known only when a request ends, so `tpm_limit` refuses new requests once the
tokens of the last minute reach the limit, as LiteLLM does. All state is in memory, on the
event loop: limits restart empty with the process, which at worst lets one extra minute through.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import RateLimited
from .record import KeyRecord

WINDOW = 60.0


@dataclass(slots=True)
class _Usage:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    token_sum: int = 0
    in_flight: int = 0

    def prune(self, now: float) -> None:
        horizon = now - WINDOW
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.token_sum -= self.tokens.popleft()[1]


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._usage: dict[str, _Usage] = {}

    def acquire(self, key: KeyRecord) -> None:
        """Admit one request of `key` or raise RateLimited; pair with `release`."""
        now = self._clock()
        usage = self._usage.get(key.key_hash)
        if usage is None:
            usage = self._usage[key.key_hash] = _Usage()
        usage.prune(now)
        if key.rpm_limit is not None and len(usage.requests) >= key.rpm_limit:
            wait = usage.requests[0] + WINDOW - now if usage.requests else WINDOW
            _refuse(key, f"rpm_limit of {key.rpm_limit} requests per minute", wait)
        if key.tpm_limit is not None and usage.token_sum >= key.tpm_limit:
            _refuse(key, f"tpm_limit of {key.tpm_limit} tokens per minute", _token_wait(usage, key.tpm_limit, now))
        if key.max_parallel_requests is not None and usage.in_flight >= key.max_parallel_requests:
            _refuse(key, f"max_parallel_requests of {key.max_parallel_requests}", 1.0)
        if key.rpm_limit is not None:
            usage.requests.append(now)
        usage.in_flight += 1

    def release(self, key_hash: str) -> None:
        usage = self._usage.get(key_hash)
        if usage is not None and usage.in_flight > 0:
            usage.in_flight -= 1

    def add_tokens(self, key: KeyRecord, tokens: int) -> None:
        if key.tpm_limit is None or tokens <= 0:
            return
        usage = self._usage.get(key.key_hash)
        if usage is None:
            usage = self._usage[key.key_hash] = _Usage()
        usage.tokens.append((self._clock(), tokens))
        usage.token_sum += tokens

    def in_flight(self, key_hash: str) -> int:
        usage = self._usage.get(key_hash)
        return usage.in_flight if usage else 0

    def forget(self, key_hash: str) -> None:
        self._usage.pop(key_hash, None)


def _token_wait(usage: _Usage, limit: int, now: float) -> float:
    """Seconds until enough of the last minute's tokens age out to drop below `limit`."""
    remaining = usage.token_sum
    for at, tokens in usage.tokens:
        remaining -= tokens
        if remaining < limit:
            return at + WINDOW - now
    return WINDOW


def _refuse(key: KeyRecord, what: str, wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    raise RateLimited(
        f"Rate limit exceeded for key `{key.label}`: {what}. Retry after {seconds}s.",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(seconds)},
    )
