"""The gateway's one connection to Redis: where the URL comes from, whether Redis answers (for
/health and gateway.log), the background sender that keeps Redis off the latency path, the
pub/sub listener, and the reconcilers that run when Redis answers again.

State machine: `up` until any call fails with a network error (`failed()`), then `down`: every
user of the link serves from memory and counts locally, one WARNING is logged and repeated every
`warn_every` seconds; a probe pings every `probe_interval` and, once Redis answers, runs the
reconcilers in order (push what was counted locally, reseed a Redis that lost its data, reload)
before the link is `up` again. A reconciler that fails leaves the link down for the next probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .redis_config import public_url

log = logging.getLogger("proxy.redis")

PREFIX = "shin:"
#: Errors that mean "Redis cannot be reached now" (BusyLoadingError, a Redis still loading its
#: data after a restart, is a ConnectionError too); anything else is a bug and propagates.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
HOST_TTL_MS = 15_000
CLOSE_TIMEOUT = 1.0

Op = Callable[[Any], Any]  # adds commands to a pipeline (may be a coroutine: scripts)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass(frozen=True)
class RedisStatus:
    url: str  # without the password
    degraded: bool
    reason: str | None
    down_since: float | None  # epoch


class RedisLink:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = PREFIX,
        timeout: float = 1.0,
        probe_interval: float = 0.5,
        heartbeat: float = 5.0,
        warn_every: float = 60.0,
    ) -> None:
        self.url = url
        self.public = public_url(url)
        self.prefix = prefix
        self.probe_interval = probe_interval
        self.heartbeat = heartbeat
        self.warn_every = warn_every
        options: dict[str, Any] = {
            "socket_timeout": timeout, "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0), "decode_responses": True,
        }
        self.client = aioredis.Redis.from_url(url, **options)
        #: pub/sub waits for messages without a read timeout; the probe notices a dead Redis.
        self._sub_client = aioredis.Redis.from_url(url, **{**options, "socket_timeout": None})
        self.host_id = secrets.token_hex(6)
        #: Until connect() says otherwise; its failure logs the WARNING like any later one.
        self.up = True
        self._reason: str | None = None
        self._down_since: float | None = None
        self._next_warning = 0.0
        self._stale = False  # pooled connections may be dead: drop them before the next try
        self._up_event = asyncio.Event()
        self._down_event = asyncio.Event()
        self._reconcilers: list[Callable[[], Awaitable[None]]] = []
        self._channels: dict[str, Callable[[str], None]] = {}
        self._on_subscribed: list[Callable[[], Awaitable[None]]] = []
        self._ops: list[Op] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- wiring (before start) --------------------------------------------------------------
    def on_reconnect(self, reconciler: Callable[[], Awaitable[None]]) -> None:
        self._reconcilers.append(reconciler)

    def subscribe(self, channel: str, handler: Callable[[str], None]) -> None:
        self._channels[self.prefix + channel] = handler

    def on_subscribed(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Runs each time the listener (re)subscribed: catch up on what it may have missed."""
        self._on_subscribed.append(callback)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # -- lifecycle ----------------------------------------------------------------------------
    async def connect(self) -> bool:
        """First contact at start-up: True when Redis answered."""
        try:
            await self.client.ping()
            await self.client.set(self.key("host", self.host_id), "1", px=HOST_TTL_MS)
        except NETWORK_ERRORS as exc:
            self.failed(exc)
            return False
        self._mark_up()
        return True

    def start(self) -> None:
        for name, loop in (("probe", self._probe_loop), ("sender", self._sender_loop),
                           ("listener", self._listen_loop)):
            self._tasks.append(asyncio.create_task(loop(), name=f"redis-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_TIMEOUT)  # a close never hangs shutdown
        self._tasks.clear()
        if self.up and self._ops:
            with contextlib.suppress(*NETWORK_ERRORS):
                await self._send_batch()
        if self.up:
            with contextlib.suppress(*NETWORK_ERRORS):
                await self.client.delete(self.key("host", self.host_id))
        for client in (self.client, self._sub_client):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), CLOSE_TIMEOUT)

    # -- state ----------------------------------------------------------------------------------
    def status(self) -> RedisStatus:
        return RedisStatus(self.public, not self.up, None if self.up else self._reason, self._down_since)

    def failed(self, exc: BaseException | str) -> None:
        """A call to Redis failed: serve from memory until the probe reconciles.

        redis-py turns a cancellation in the middle of a command into a ConnectionError; a task
        being cancelled (shutdown) must stop, not carry on as if Redis were down."""
        task = asyncio.current_task() if _loop_running() else None
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        reason = exc if isinstance(exc, str) else f"Redis unreachable at {self.public}: {type(exc).__name__}: {exc}"
        if not self.up:
            self._reason = reason
            return
        self.up = False
        self._stale = True
        self._up_event.clear()
        self._down_event.set()
        self._reason = reason
        self._down_since = time.time()
        self._next_warning = time.monotonic() + self.warn_every
        self._ops.clear()  # counted locally instead; the reconcilers push the totals
        log.warning("%s; serving from the last known keys, budgets and limits, counting limits "
                    "locally meanwhile", reason)

    def _mark_up(self) -> None:
        self.up = True
        self._reason = None
        self._down_since = None
        self._up_event.set()
        self._down_event.clear()

    async def wait_up(self) -> None:
        await self._up_event.wait()

    def new_host_id(self) -> str:
        """A fresh identity for this host's parallel-request slots (after an outage the old
        one's slots are dropped whole and the current ones pushed again)."""
        old, self.host_id = self.host_id, secrets.token_hex(6)
        return old

    # -- background sends -------------------------------------------------------------------
    def send(self, op: Op) -> None:
        """Queue commands for the next pipeline; dropped while Redis is down (the local count
        covers them and the reconcilers push totals)."""
        if self.up:
            self._ops.append(op)
            self._wake.set()

    async def _send_batch(self) -> None:
        ops, self._ops = self._ops, []
        async with self.client.pipeline(transaction=False) as pipe:
            for op in ops:
                queued = op(pipe)
                if inspect.isawaitable(queued):
                    await queued
            await pipe.execute()

    async def _sender_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._ops:
                continue
            try:
                await self._send_batch()
            except NETWORK_ERRORS as exc:
                self.failed(exc)

    # -- probe, heartbeat, reconcile -----------------------------------------------------------
    async def _probe_loop(self) -> None:
        while True:
            if self.up:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._down_event.wait(), self.heartbeat)
                if not self.up:
                    continue
                try:
                    await self.client.set(self.key("host", self.host_id), "1", px=HOST_TTL_MS)
                except NETWORK_ERRORS as exc:
                    self.failed(exc)
                continue
            await asyncio.sleep(self.probe_interval)
            await self.probe()

    async def probe(self) -> bool:
        """Try Redis once; on an answer, reconcile and come back up. True when up."""
        if self.up:
            return True
        try:
            if self._stale:
                self._stale = False
                await self.client.connection_pool.disconnect()
                await self._sub_client.connection_pool.disconnect()
            await self.client.ping()
            await self.client.set(self.key("host", self.host_id), "1", px=HOST_TTL_MS)
            for reconcile in self._reconcilers:
                await reconcile()
        except NETWORK_ERRORS as exc:
            now = time.monotonic()
            if now >= self._next_warning:
                self._next_warning = now + self.warn_every
                since = self._down_since or time.time()
                log.warning("Redis still unreachable at %s after %.0f s (%s: %s); serving from the "
                            "last known state", self.public, time.time() - since, type(exc).__name__, exc)
            return False
        since = self._down_since
        self._mark_up()
        if since is not None:
            log.warning("Redis at %s is back after %.1f s; local counts and spend reconciled",
                        self.public, time.time() - since)
        return True

    # -- pub/sub ----------------------------------------------------------------------------------
    async def _listen_loop(self) -> None:
        while True:
            await self.wait_up()
            pubsub = self._sub_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._channels)
                for callback in self._on_subscribed:
                    await callback()
                while self.up:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._dispatch(message["channel"], message["data"])
            except NETWORK_ERRORS as exc:
                self.failed(exc)
                await asyncio.sleep(self.probe_interval)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT)

    def _dispatch(self, channel: str, data: str) -> None:
        handler = self._channels.get(channel)
        if handler is None:
            return
        try:
            handler(data)
        except Exception:
            log.exception("Redis message on %s could not be applied", channel)
