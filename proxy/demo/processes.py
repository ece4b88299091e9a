"""Child processes of the demo: started on free ports, waited for, always stopped.

`Processes` is a context manager: leaving it (normally, on an error, on Ctrl-C or SIGTERM)
terminates every child it started, politely first (the gateway flushes its request log on
SIGTERM), then by force.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ..errors import OperationError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    output: Path  # the child's stdout and stderr


class Processes:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.children: list[Child] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()

    def start(self, name: str, module_args: Sequence[str], url: str, ready_path: str,
              timeout: float = 30.0) -> Child:
        """Run `python -m <module_args>` and wait until GET url+ready_path answers 200."""
        output = self.folder / f"{name}.out"
        with open(output, "wb") as sink:
            process = subprocess.Popen([sys.executable, "-m", *module_args],
                                       stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        child = Child(name, process, url, output)
        self.children.append(child)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise OperationError(f"{name} exited with status {process.returncode}:\n{_tail(output)}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url + ready_path, timeout=2) as response:
                    if response.status == 200:
                        return child
            time.sleep(0.1)
        raise OperationError(f"{name} did not become ready within {timeout:g}s:\n{_tail(output)}")

    def stop_all(self, timeout: float = 20.0) -> None:
        # Newest first: the gateway goes before the upstream it talks to.
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"
