"""The in-memory RateCounter (store/base.py): `rpm_limit`, `tpm_limit`, `max_parallel_requests`
per key, user, team and end user → 429 + Retry-After.

Windows slide over the last 60 s (no burst of 2×limit at a minute boundary, as fixed windows
allow). Tokens are known only when a request ends, so `tpm_limit` refuses new requests once the
tokens of the last minute reach the limit, as LiteLLM does. All state is in memory, on the
event loop: limits restart empty with the process, which at worst lets one extra minute through,
and each gateway process counts its own requests (a shared backend would count them all).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import RateLimited
from ..records import Ref

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


class MemoryRateCounter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._usage: dict[Ref, _Usage] = {}

    def _get(self, ref: Ref) -> _Usage:
        usage = self._usage.get(ref)
        if usage is None:
            usage = self._usage[ref] = _Usage()
        return usage

    async def acquire(self, subjects: Sequence[Any]) -> None:
        """Admit one request against every subject, or none: raise RateLimited for the first
        limit reached. Pair with `release`."""
        now = self._clock()
        self.check(subjects, now)
        self.record(subjects, now)

    def check(self, subjects: Sequence[Any], now: float) -> None:
        """Raise RateLimited for the first limit a request now would pass; count nothing."""
        for s in subjects:
            usage = self._get(s.ref)
            usage.prune(now)
            if s.rpm_limit is not None and len(usage.requests) >= s.rpm_limit:
                wait = usage.requests[0] + WINDOW - now if usage.requests else WINDOW
                _refuse(s, f"rpm_limit of {s.rpm_limit} requests per minute", wait)
            if s.tpm_limit is not None and usage.token_sum >= s.tpm_limit:
                _refuse(s, f"tpm_limit of {s.tpm_limit} tokens per minute", _token_wait(usage, s.tpm_limit, now))
            if s.max_parallel_requests is not None and usage.in_flight >= s.max_parallel_requests:
                _refuse(s, f"max_parallel_requests of {s.max_parallel_requests}", 1.0)

    def record(self, subjects: Sequence[Any], now: float) -> None:
        """Count one admitted request against every subject (also when another store admitted
        it: the Redis counter keeps its host's own count this way)."""
        for s in subjects:
            usage = self._get(s.ref)
            usage.prune(now)
            if s.rpm_limit is not None:
                usage.requests.append(now)
            usage.in_flight += 1

    def release(self, refs: Sequence[Ref]) -> None:
        for ref in refs:
            usage = self._usage.get(ref)
            if usage is not None and usage.in_flight > 0:
                usage.in_flight -= 1

    def add_tokens(self, subjects: Sequence[Any], tokens: int) -> None:
        if tokens <= 0:
            return
        now = self._clock()
        for s in subjects:
            if s.tpm_limit is None:
                continue
            usage = self._get(s.ref)
            usage.tokens.append((now, tokens))
            usage.token_sum += tokens

    def usage(self, ref: Ref) -> tuple[int, int]:
        """(requests, tokens) counted against `ref` in the last minute (for /metrics). Only
        what a limit needs is counted: requests under an rpm_limit, tokens under a tpm_limit."""
        usage = self._usage.get(ref)
        if usage is None:
            return 0, 0
        usage.prune(self._clock())
        return len(usage.requests), usage.token_sum

    def in_flight(self, ref: Ref) -> int:
        usage = self._usage.get(ref)
        return usage.in_flight if usage else 0

    def forget(self, ref: Ref) -> None:
        self._usage.pop(ref, None)

    def counts(self) -> Iterator[tuple[Ref, _Usage]]:
        """Every subject counted, with its requests, tokens and slots (the Redis counter
        pushes them when Redis answers again)."""
        return iter(self._usage.items())


def _token_wait(usage: _Usage, limit: int, now: float) -> float:
    """Seconds until enough of the last minute's tokens age out to drop below `limit`."""
    remaining = usage.token_sum
    for at, tokens in usage.tokens:
        remaining -= tokens
        if remaining < limit:
            return at + WINDOW - now
    return WINDOW


def _refuse(subject: Any, what: str, wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    raise RateLimited(
        f"Rate limit exceeded for {subject.label}: {what}. Retry after {seconds}s.",
        headers={"Retry-After": str(seconds)},
    )
