"""The Redis RateCounter (store/base.py): rpm, tpm and parallel-request limits shared by every
gateway host on one Redis.

One round trip per admitted request that has limits (the ACQUIRE script checks every subject
and takes a slot in each, all or none), none for a request without limits; `release` and
`add_tokens` are queued for the link's background pipeline. Windows slide over the last 60 s
of wall-clock time (hosts' clocks should agree, e.g. NTP). Parallel slots are counted per host
and count only while that host's heartbeat lives, so a host that dies frees its slots within
15 s.

While Redis is down each host decides alone from its own counts (which it always keeps): the
requests, tokens and slots of the other hosts are not seen, so each limit can be exceeded up
to once per host. When Redis answers again, the requests and tokens counted locally in the last
minute are added to the shared windows and this host's slots are pushed again under a fresh
host id (the old id's counts, possibly stale, are dropped whole).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from typing import Any

from ..records import Ref
from .memory_limits import WINDOW, MemoryRateCounter, _refuse
from .redis_link import HOST_TTL_MS, NETWORK_ERRORS, RedisLink
from .redis_scripts import ACQUIRE, ADD_TOKENS, RELEASE

USAGE_TTL = 5.0

WHAT = {
    "rpm": "rpm_limit of {s.rpm_limit} requests per minute",
    "tpm": "tpm_limit of {s.tpm_limit} tokens per minute",
    "parallel": "max_parallel_requests of {s.max_parallel_requests}",
}


def _limit(value: int | None) -> int:
    return -1 if value is None else int(value)


class RedisRateCounter:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        client = link.client
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._add_tokens = client.register_script(ADD_TOKENS)
        #: This host's own counts, kept in both modes: the basis of local decisions while
        #: Redis is away, and what `reconcile` pushes when it answers again.
        self.local = MemoryRateCounter(clock=time.time)
        self._parallel: set[Ref] = set()  # refs whose slots are held in Redis
        self._local_since: float | None = None  # counting locally from then on (epoch)
        self._wanted: set[Ref] = set()  # refs /metrics asks about
        self._shared: dict[Ref, tuple[int, int]] = {}
        self._shared_at = -USAGE_TTL
        self._refresh: asyncio.Task[None] | None = None

    def _keys(self, ref: Ref) -> list[str]:
        base = self.link.key("rl", ref.kind, ref.ident)
        return [base + ":r", base + ":t", base + ":s", base + ":p"]

    # -- RateCounter ------------------------------------------------------------------------------
    async def acquire(self, subjects: Sequence[Any]) -> None:
        now = time.time()
        if self.link.up:
            keys: list[str] = []
            args: list[Any] = [self.link.prefix, int(now * 1000), secrets.token_hex(8), self.link.host_id]
            for s in subjects:
                keys += self._keys(s.ref)
                args += [_limit(s.rpm_limit), _limit(s.tpm_limit), _limit(s.max_parallel_requests)]
            try:
                result = await self._acquire(keys=keys, args=args)
            except NETWORK_ERRORS as exc:
                self.link.failed(exc)
            else:
                if int(result[0]) != 0:
                    s = subjects[int(result[0]) - 1]
                    _refuse(s, WHAT[result[1]].format(s=s), float(result[2]) / 1000)
                self._record(subjects, now)
                return
        if self._local_since is None:
            self._local_since = now
        self.local.check(subjects, now)
        self._record(subjects, now)

    def release(self, refs: Sequence[Ref]) -> None:
        self.local.release(refs)
        shared = [self._keys(ref)[3] for ref in refs if ref in self._parallel]
        if shared:
            host = self.link.host_id
            self.link.send(lambda pipe: self._release(keys=shared, args=[host], client=pipe))

    def add_tokens(self, subjects: Sequence[Any], tokens: int) -> None:
        if tokens <= 0:
            return
        now = time.time()
        self.local.add_tokens(subjects, tokens)
        keys = [key for s in subjects if s.tpm_limit is not None for key in self._keys(s.ref)[1:3]]
        if not keys:
            return
        if not self.link.up and self._local_since is None:
            self._local_since = now
        args = [int(now * 1000), secrets.token_hex(8), tokens]
        self.link.send(lambda pipe: self._add_tokens(keys=keys, args=args, client=pipe))

    def in_flight(self, ref: Ref) -> int:
        return self.local.in_flight(ref)

    def usage(self, ref: Ref) -> tuple[int, int]:
        """(requests, tokens) every host counted against `ref` in the last minute, for /metrics:
        read from Redis in the background at most every USAGE_TTL seconds (one pipeline for all
        the refs /metrics asked about), this host's own count until then or while Redis is down."""
        self._wanted.add(ref)
        now = time.monotonic()
        if self.link.up and now - self._shared_at >= USAGE_TTL and (self._refresh is None or self._refresh.done()):
            self._shared_at = now
            self._refresh = asyncio.get_running_loop().create_task(self._read_usage(list(self._wanted)))
        shared = self._shared.get(ref) if self.link.up else None
        if shared is not None:
            return shared
        return self.local.usage(ref)

    async def _read_usage(self, refs: list[Ref]) -> None:
        horizon = int((time.time() - WINDOW) * 1000)
        try:
            async with self.link.client.pipeline(transaction=False) as pipe:
                for ref in refs:
                    rk, tk, sk, _ = self._keys(ref)
                    pipe.zcount(rk, f"({horizon}", "+inf").get(sk)
                values = await pipe.execute()
        except NETWORK_ERRORS as exc:
            self.link.failed(exc)
            return
        self._shared = {ref: (int(values[2 * i]), int(values[2 * i + 1] or 0)) for i, ref in enumerate(refs)}

    def forget(self, ref: Ref) -> None:
        self.local.forget(ref)
        self._parallel.discard(ref)
        self._wanted.discard(ref)

    def _record(self, subjects: Sequence[Any], now: float) -> None:
        self.local.record(subjects, now)
        self._parallel.update(s.ref for s in subjects if s.max_parallel_requests is not None)

    async def reconcile(self) -> None:
        """Redis answers again: add what was counted locally, push this host's slots."""
        old = self.link.new_host_id()
        now = time.time()
        since = self._local_since if self._local_since is not None else now
        horizon = max(since, now - WINDOW)
        async with self.link.client.pipeline(transaction=False) as pipe:
            pipe.delete(self.link.key("host", old))
            pipe.set(self.link.key("host", self.link.host_id), "1", px=HOST_TTL_MS)
            for ref, usage in self.local.counts():
                rk, tk, sk, pk = self._keys(ref)
                recent = [t for t in usage.requests if t >= horizon]
                if recent:
                    pipe.zadd(rk, {secrets.token_hex(8): int(t * 1000) for t in recent})
                    pipe.pexpire(rk, int(WINDOW * 1000) + 1000)
                for at, tokens in usage.tokens:
                    if at >= horizon:
                        pipe.zadd(tk, {f"{secrets.token_hex(8)}:{tokens}": int(at * 1000)})
                        pipe.incrby(sk, tokens)
                        pipe.pexpire(tk, int(WINDOW * 1000) + 1000)
                        pipe.pexpire(sk, int(WINDOW * 1000) + 1000)
                if ref in self._parallel and usage.in_flight > 0:
                    pipe.hset(pk, self.link.host_id, usage.in_flight)
            await pipe.execute()
        self._local_since = None

