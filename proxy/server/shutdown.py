"""Serving until SIGTERM, then one grace period (`general_settings.shutdown_grace`).

aiohttp's `run_app` applies its `shutdown_timeout` twice — once waiting for handlers, once
more after "cancelling" them (which only fails their request body) — so one stream in flight
kept the gateway up for 2 × 30 s, past systemd's TimeoutStopSec. Here, on SIGTERM or SIGINT:

1. stop accepting (close the listening socket, close idle keep-alive connections);
2. wait up to `shutdown_grace` for in-flight requests to finish;
3. cancel what is left, each handler knowing it was cancelled by shutdown (its row says so,
   with what was streamed), and give them CANCEL_WAIT to write their rows;
4. commit or spill every queued request-log row (LOG_FLUSH_TIMEOUT at most), then run the
   cleanup contexts in what is left of SHUTDOWN_MARGIN;
so the process exits 0 within shutdown_grace + SHUTDOWN_MARGIN (docs/operations.md: systemd's
TimeoutStopSec must be longer). A second signal skips what is left of the grace.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from ..state import WRITER

log = logging.getLogger("proxy")

#: Seconds beyond shutdown_grace the whole exit may take (cancelling, log flush, cleanup).
SHUTDOWN_MARGIN = 10.0
#: Seconds cancelled handlers get to finish their rows.
CANCEL_WAIT = 2.0
#: Seconds the request log gets to commit or spill its queue at exit (the writer needs one
#: commit attempt, ≤ 1 s busy wait, and one fsync of the spill file).
LOG_FLUSH_TIMEOUT = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InFlight:
    """The handler tasks running now, so shutdown can wait for them and then cancel them, and
    the work they left to run after them (`later`), which shutdown waits for too."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self._cancelled: set[asyncio.Task[object]] = set()
        self._later = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._tasks) + self._later

    def later(self, work: Callable[[], None]) -> None:
        """Run `work` (which must not raise) on the next turn of the event loop, after the
        callbacks already waiting: how a request hands its row over once its answer is out,
        so the answers of the requests behind it go first."""
        self._later += 1
        self._idle.clear()
        asyncio.get_running_loop().call_soon(self._run_later, work)

    def _run_later(self, work: Callable[[], None]) -> None:
        try:
            work()
        finally:
            self._later -= 1
            if not self._tasks and not self._later:
                self._idle.set()

    def cancelled_by_shutdown(self, task: asyncio.Task[object] | None) -> bool:
        return task in self._cancelled

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), max(0.0, timeout))
        except TimeoutError:
            return False
        return True

    def cancel_all(self) -> int:
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            self._cancelled.add(task)
            task.cancel("gateway shutdown")
        return len(tasks)

    def _enter(self, task: asyncio.Task[object]) -> None:
        self._tasks.add(task)
        self._idle.clear()

    def _leave(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        self._cancelled.discard(task)
        if not self._tasks and not self._later:
            self._idle.set()


IN_FLIGHT: web.AppKey[InFlight] = web.AppKey("in_flight", InFlight)


@web.middleware
async def track_in_flight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: the request counts as in flight until its row is submitted."""
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - aiohttp always runs handlers in a task
        return await handler(request)
    in_flight = request.app[IN_FLIGHT]
    in_flight._enter(task)
    try:
        return await handler(request)
    finally:
        in_flight._leave(task)


def is_shutdown_cancel(request: web.Request) -> bool:
    """Is the current handler being cancelled by shutdown (rather than the client leaving)?"""
    return request.app[IN_FLIGHT].cancelled_by_shutdown(asyncio.current_task())


class StopSource(Protocol):
    """Where the order to stop comes from: the process's signals, or (a `--workers` worker)
    its supervisor. `first()` returns the next order as a signal number."""

    async def first(self) -> int: ...


async def serve(
    app: web.Application, host: str, port: int, grace: float, *,
    sock: socket.socket | None = None,
    stops: Callable[[], StopSource] | None = None,
    started: Callable[[str], None] | None = None,
) -> None:
    """Run `app` on host:port (or on a listening `sock` shared by several workers) until
    SIGTERM/SIGINT (or what `stops` makes), then shut down as the module doc says. `started`
    is told the address once requests are accepted."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=CANCEL_WAIT)
    await runner.setup()
    # Everything start-up made (modules, the config, the price tables) lives as long as the
    # process: out of the collector's sight, a full collection under load is a few ms, not
    # 25-40 ms with every request on the event loop waiting (the gc module's advice for
    # long-running servers).
    gc.freeze()
    deadline: float | None = None
    try:
        site: web.BaseSite = web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, host, port)
        await site.start()
        # The bound address (the real port when --port 0); tests and scripts read this line.
        log.info("Running on %s", site.name)
        if started is not None:
            started(site.name)
        signals = stops() if stops is not None else _Signals()
        signum = await signals.first()
        deadline = time.monotonic() + grace + SHUTDOWN_MARGIN
        await _drain(app, runner, site, grace, signum, signals)
    finally:
        remaining = SHUTDOWN_MARGIN if deadline is None else max(1.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(runner.cleanup(), remaining)
        except TimeoutError:
            log.error("shutdown: cleanup did not finish within the shutdown margin; exiting anyway")


async def _drain(
    app: web.Application, runner: web.AppRunner, site: web.BaseSite, grace: float,
    signum: int, signals: StopSource,
) -> None:
    in_flight = app[IN_FLIGHT]
    started = time.monotonic()
    log.info("%s: no longer accepting requests; %d in flight get up to %gs (shutdown_grace)",
                signal.Signals(signum).name, len(in_flight), grace)
    await site.stop()
    if runner.server is not None:
        runner.server.pre_shutdown()  # idle keep-alive connections close now
    finished = asyncio.ensure_future(in_flight.wait_idle(grace))
    again = asyncio.ensure_future(signals.first())
    await asyncio.wait({finished, again}, return_when=asyncio.FIRST_COMPLETED)
    again.cancel()
    if not (finished.done() and finished.result()):
        finished.cancel()
        cancelled = in_flight.cancel_all()
        log.warning("shutdown: cancelled %d requests still running after %.1fs; each is "
                    "logged as cancelled by shutdown", cancelled, time.monotonic() - started)
        if not await in_flight.wait_idle(CANCEL_WAIT):
            log.error("shutdown: %d requests did not end within %gs of being cancelled",
                      len(in_flight), CANCEL_WAIT)
    writer = app.get(WRITER)
    if writer is not None:
        # Every row is queued now: make it safe before slower cleanups (callbacks) run.
        await asyncio.to_thread(writer.flush, LOG_FLUSH_TIMEOUT)
    log.info("shutdown: requests drained in %.1fs", time.monotonic() - started)


class _Signals:
    """SIGTERM and SIGINT as awaitable events (aiohttp's own handler would raise GracefulExit
    into whatever is running)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._queue.put_nowait, signum)

    async def first(self) -> int:
        return await self._queue.get()
