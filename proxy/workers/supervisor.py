"""The supervisor of `serve --workers N`: N workers on one port, kept running, stopped together.

Start-up, in the parent, before any worker: read the config and build the app once (a config
error stops here, exit 2, as a single `serve` would), bring litellm.db and keys.db up to date
(migrations run once, not raced by N workers), make a private run directory (prometheus-client's
multiprocess files and the shared rate-limit counters; removed at exit) and bind the port
(`--port 0` is resolved here, so every worker gets the same one). Then start the workers and
say "Running on http://…" once all of them accept requests; a worker that fails to start stops
the whole gateway (exit 1) rather than being restarted in a loop.

Running: a worker that exits is logged (ERROR: pid, status) and started again after a back-off
(0.5 s, doubling to 30 s; back to 0.5 s once a worker has run for a minute). Its in-flight
rate-limit slots are released and its live gauges dropped (mark_process_dead); its counters
stay in the totals.

SIGTERM/SIGINT: the port is closed, the order is forwarded once to every worker (each drains
within shutdown_grace as a single `serve` does: server/shutdown.py), a second signal is
forwarded too (skip the rest of the grace). A worker still running after shutdown_grace +
SHUTDOWN_MARGIN + KILL_MARGIN is killed. Exit 0 when every worker exited 0; 1 when a worker
had to be killed or lost request-log rows (worker.EXIT_LOST) — gateway.log names which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import __version__
from ..server.shutdown import SHUTDOWN_MARGIN
from . import listen
from .info import LIMITS_DB, METRICS_DIR
from .worker import EXIT_LOST, WorkerSpec

log = logging.getLogger("proxy.workers")

#: Seconds beyond a worker's own deadline (grace + SHUTDOWN_MARGIN) before it is killed.
KILL_MARGIN = 2.0
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
#: A worker that ran this long resets its back-off.
STABLE_AFTER = 60.0
#: Seconds every worker gets to start accepting requests at start-up.
START_TIMEOUT = 120.0


@dataclass
class _Slot:
    index: int
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    backoff: float = FIRST_BACKOFF
    exit_code: int | None = None
    killed: bool = False


class Supervisor:
    def __init__(self, spec: WorkerSpec, count: int, grace: float, sock: socket.socket, mode: str) -> None:
        self.spec = spec  # the template: index and ready_fd are set per worker
        self.count = count
        self.grace = grace
        self.sock: socket.socket | None = sock
        self.mode = mode
        self.run_dir = Path(spec.run_dir)
        self.slots = [_Slot(i) for i in range(1, count + 1)]
        self.stopping = asyncio.Event()
        self.spawning = asyncio.Lock()  # no worker starts once stopping is set
        self.failed = asyncio.Event()  # a worker died before the gateway first accepted requests
        self.serving = False  # every worker has accepted requests once
        self.orders: asyncio.Queue[int] = asyncio.Queue()

    # -- the whole run ------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.orders.put_nowait, signum)
        keepers = []
        for slot in self.slots:
            await self._spawn(slot)
            keepers.append(asyncio.create_task(self._keep(slot), name=f"worker-{slot.index}"))
        first_order = asyncio.ensure_future(self.orders.get())
        if await self._started(first_order):
            self.serving = True
            address = self.sock.getsockname() if self.sock is not None else (self.spec.host, self.spec.port)
            # The line a single `serve` prints too: scripts and tests wait for it.
            log.info("Running on http://%s:%d (%d workers, %s)", *_host_port(address), self.count, self.mode)
            await first_order
        signum = first_order.result() if first_order.done() else signal.SIGTERM
        first_order.cancel()
        await self._stop_all(signum)
        for task in keepers:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        return self._exit_status()

    async def _started(self, first_order: asyncio.Future[int]) -> bool:
        everyone = asyncio.ensure_future(asyncio.gather(*(s.ready.wait() for s in self.slots)))
        failed = asyncio.ensure_future(self.failed.wait())
        done, _ = await asyncio.wait({everyone, failed, first_order}, timeout=START_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        everyone.cancel()
        failed.cancel()
        if self.failed.is_set():
            log.error("a worker failed to start (its error is above): stopping the gateway")
            return False
        if not done:
            log.error("workers did not start within %gs: stopping the gateway", START_TIMEOUT)
            self.failed.set()
            return False
        return not first_order.done()

    # -- one worker ---------------------------------------------------------------------------
    async def _spawn(self, slot: _Slot) -> None:
        read_fd, write_fd = os.pipe()
        spec = replace(self.spec, index=slot.index, ready_fd=write_fd)
        fds = [write_fd] + ([spec.listen_fd] if spec.listen_fd is not None else [])
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / METRICS_DIR)}
        slot.ready = asyncio.Event()
        try:
            slot.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "proxy.workers.worker", spec.encode(),
                stdin=asyncio.subprocess.PIPE, pass_fds=fds, env=env,
            )
        finally:
            os.close(write_fd)
        slot.started_at = time.monotonic()
        slot.exit_code, slot.killed = None, False
        _watch_ready(read_fd, slot.ready)
        log.info("worker %d started (pid %d)", slot.index, slot.proc.pid)

    async def _keep(self, slot: _Slot) -> None:
        """Restart the worker in `slot` whenever it exits, until the gateway stops."""
        while True:
            assert slot.proc is not None
            code = await slot.proc.wait()
            slot.exit_code = code
            pid = slot.proc.pid
            if self.stopping.is_set():
                return
            await self._bury(pid)
            if not self.serving:
                log.error("worker %d (pid %d) %s before it started", slot.index, pid, _describe(code))
                self.failed.set()
                return
            if time.monotonic() - slot.started_at >= STABLE_AFTER:
                slot.backoff = FIRST_BACKOFF
            log.error("worker %d (pid %d) %s; starting another in %gs",
                      slot.index, pid, _describe(code), slot.backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), slot.backoff)
            if self.stopping.is_set():
                return
            slot.backoff = min(slot.backoff * 2, MAX_BACKOFF)
            async with self.spawning:
                if self.stopping.is_set():
                    return
                await self._spawn(slot)

    async def _bury(self, pid: int) -> None:
        """What a dead worker leaves: its rate-limit slots, its live gauges."""
        from prometheus_client import multiprocess

        from ..admin.store.sqlite_limits import release_owner

        multiprocess.mark_process_dead(pid, str(self.run_dir / METRICS_DIR))
        try:
            released = await asyncio.to_thread(release_owner, self.run_dir / LIMITS_DB, pid)
        except Exception:
            log.exception("could not release the rate-limit slots of worker pid %d", pid)
        else:
            if released:
                log.info("released %d parallel-request slots held by pid %d", released, pid)

    # -- stopping -----------------------------------------------------------------------------
    async def _stop_all(self, signum: int) -> None:
        async with self.spawning:
            self.stopping.set()
        started = time.monotonic()
        if self.sock is not None:
            self.sock.close()  # the workers' copies close as they start draining
            self.sock = None
        order = b"INT\n" if signum == signal.SIGINT else b"TERM\n"
        live = [s for s in self.slots if s.proc is not None and s.proc.returncode is None]
        log.info("%s: stopping %d workers (each drains within %gs, shutdown_grace)",
                 signal.Signals(signum).name, len(live), self.grace)
        self._order(live, order)
        deadline = started + self.grace + SHUTDOWN_MARGIN + KILL_MARGIN
        waiting = asyncio.ensure_future(asyncio.gather(*(s.proc.wait() for s in live if s.proc)))
        while not waiting.done():
            again = asyncio.ensure_future(self.orders.get())
            await asyncio.wait({waiting, again}, timeout=max(0.0, deadline - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)
            if again.done():
                log.info("%s again: workers skip the rest of the grace", signal.Signals(again.result()).name)
                self._order(live, order)
                continue
            again.cancel()
            break
        for slot in live:
            assert slot.proc is not None
            if slot.proc.returncode is None:
                log.error("worker %d (pid %d) still running %.1fs after %s: killed",
                          slot.index, slot.proc.pid, time.monotonic() - started, signal.Signals(signum).name)
                slot.killed = True
                with contextlib.suppress(ProcessLookupError):
                    slot.proc.kill()
        await asyncio.gather(*(s.proc.wait() for s in live if s.proc), return_exceptions=True)
        waiting.cancel()
        for slot in self.slots:
            if slot.proc is not None:
                slot.exit_code = slot.proc.returncode
        log.info("all workers stopped in %.1fs", time.monotonic() - started)

    def _order(self, slots: list[_Slot], order: bytes) -> None:
        for slot in slots:
            proc = slot.proc
            if proc is None or proc.returncode is not None or proc.stdin is None:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                proc.stdin.write(order)

    def _exit_status(self) -> int:
        if self.failed.is_set():
            return 1
        status = 0
        for slot in self.slots:
            if slot.killed:
                status = 1
            elif slot.exit_code == EXIT_LOST:
                log.error("worker %d lost request-log rows (see its lines above)", slot.index)
                status = 1
            elif slot.exit_code not in (0, None):
                log.error("worker %d %s", slot.index, _describe(slot.exit_code))
                status = 1
        return status


def _watch_ready(fd: int, ready: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def read() -> None:
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        if b"ready" in data:
            ready.set()
        if not data or ready.is_set():
            loop.remove_reader(fd)
            os.close(fd)

    loop.add_reader(fd, read)


def _describe(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _host_port(address: tuple) -> tuple[str, int]:
    host = address[0]
    return (f"[{host}]" if ":" in host else host), address[1]


# -- the command ------------------------------------------------------------------------------
def serve_workers(args: object, count: int, mode: str = listen.REUSEPORT) -> int:
    """`serve --workers N` (args: serve's argparse namespace)."""
    from ..admin.store.sqlite import KeysDB
    from ..admin.store.sqlite_limits import create_limits_db
    from ..config import load_config
    from ..errors import ConfigError
    from ..logdb.schema import connect_writer
    from ..logsetup import configure_logging, held_logs
    from ..server.app import create_app
    from ..state import DB_PATH, KEYS_DB_PATH

    log_arg: str | None = getattr(args, "log_file", None)
    log_file = None if log_arg is None else ("" if log_arg == "-" else log_arg)
    with held_logs("proxy.config"):
        config = load_config(getattr(args, "config", None))
        configure_logging(config.general, config.litellm, log_file=log_file)
    if config.general.log_max_bytes > 0 and (log_file is None or log_file):
        raise ConfigError("general_settings.log_max_bytes: size-based rotation needs one process; with "
                          "--workers rotate gateway.log with logrotate (docs/operations.md)")
    app = create_app(config, db_path=getattr(args, "db", None), keys_db_path=getattr(args, "keys_db", None))
    connect_writer(app[DB_PATH]).close()  # migrations run once, here
    KeysDB(app[KEYS_DB_PATH]).close()

    host, port = getattr(args, "host", "127.0.0.1"), getattr(args, "port", 4000)
    sock = listen.supervisor_socket(mode, host, port)
    run_dir = Path(tempfile.mkdtemp(prefix="shin-workers-"))
    try:
        (run_dir / METRICS_DIR).mkdir()
        create_limits_db(run_dir / LIMITS_DB)
        port = listen.bound_port(sock)
        log.info("Shin Gateway %s on http://%s:%d: %d workers (run directory %s)",
                 __version__, *_host_port((host, port)), count, run_dir)
        spec = WorkerSpec(
            config=getattr(args, "config", None), host=host, port=port, db=app[DB_PATH],
            keys_db=app[KEYS_DB_PATH], log_file=log_arg, index=0, count=count,
            run_dir=str(run_dir), ready_fd=-1,
            listen_fd=sock.fileno() if mode == listen.SHARED else None,
        )
        del app
        return asyncio.run(Supervisor(spec, count, config.general.shutdown_grace, sock, mode).run())
    finally:
        sock.close()
        shutil.rmtree(run_dir, ignore_errors=True)
