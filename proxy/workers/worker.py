"""One `--workers` worker: the same gateway as a single `serve`, on the supervisor's port.

It takes its orders from the supervisor, not from signals: SIGTERM and SIGINT are ignored
(systemd's default KillMode sends SIGTERM to every process of the service, and Ctrl-C reaches
the whole process group — the supervisor forwards them once, so a worker never mistakes the
second copy for "stop now"). The orders arrive on stdin, a pipe from the supervisor, one word
a line: `TERM` or `INT` (drain within shutdown_grace; a second one skips the rest of the
grace). End of file — the supervisor is gone — counts as TERM. SIGKILL still ends a worker at
once; the supervisor then starts another.

Started as `python -m proxy.workers.worker SPEC` (SPEC: JSON, see WorkerSpec). Exit status:
0, or EXIT_LOST when request-log rows could be neither committed nor spilled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError
from .info import WorkerInfo
from .listen import worker_socket

log = logging.getLogger("proxy.workers")

EXIT_LOST = 3
ORDERS = {b"TERM": signal.SIGTERM, b"INT": signal.SIGINT}


@dataclass(frozen=True)
class WorkerSpec:
    config: str | None
    host: str
    port: int
    db: str | None
    keys_db: str | None
    log_file: str | None  # as `serve --log-file` takes it ("-": stderr only)
    index: int
    count: int
    run_dir: str
    ready_fd: int
    listen_fd: int | None = None  # shared mode: the supervisor's listening socket

    def encode(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, text: str) -> WorkerSpec:
        return cls(**json.loads(text))


class ControlPipe:
    """The supervisor's orders as a StopSource (server/shutdown.py)."""

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._buffer = b""
        self._orders: asyncio.Queue[int] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 256)
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._fd)
            log.warning("the supervisor is gone: stopping")
            self._orders.put_nowait(signal.SIGTERM)
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            order = ORDERS.get(line.strip())
            if order is not None:
                self._orders.put_nowait(order)

    async def first(self) -> int:
        return await self._orders.get()


def run(spec: WorkerSpec) -> int:
    from ..cli import _loop_factory  # the event loop a single `serve` runs on
    from ..config import load_config
    from ..logsetup import configure_logging
    from ..server.app import create_app
    from ..server.shutdown import serve
    from ..state import WRITER
    from .logfile import name_worker_lines

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    config_log = logging.getLogger("proxy.config")
    config_log.disabled = True  # the supervisor read the same file and said its warnings once
    try:
        config = load_config(spec.config)
    finally:
        config_log.disabled = False
    log_file = None if spec.log_file is None else ("" if spec.log_file == "-" else spec.log_file)
    configure_logging(config.general, config.litellm, log_file=log_file)
    name_worker_lines(spec.index)

    info = WorkerInfo(index=spec.index, count=spec.count, run_dir=Path(spec.run_dir))
    app = create_app(config, db_path=spec.db, keys_db_path=spec.keys_db, worker=info)
    if spec.listen_fd is not None:
        sock = socket.socket(fileno=spec.listen_fd)
    else:
        sock = worker_socket(spec.host, spec.port)

    def started(address: str) -> None:
        os.write(spec.ready_fd, b"ready\n")
        os.close(spec.ready_fd)

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(app, spec.host, spec.port, config.general.shutdown_grace,
                         sock=sock, stops=ControlPipe, started=started))
    writer = app.get(WRITER)
    lost = writer.status().rows_lost if writer is not None else 0
    return EXIT_LOST if lost else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return run(WorkerSpec.decode(args[0]))
    except ConfigError as exc:
        print(f"shin-proxy worker: config error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"shin-proxy worker: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
