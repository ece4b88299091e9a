"""Processes under test: start, wait until they answer, read their CPU time and memory, stop.

CPU time and RSS come from /proc (Linux): utime+stime of the whole process, every thread
included (the request-log writer thread counts against the gateway, as it should).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from proxy.demo.processes import free_port

__all__ = ["BenchError", "Service", "free_port", "start", "stop_all", "wait_ready"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchError(RuntimeError):
    """Something the benchmark needs did not work; the message says what."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """utime + stime so far (fields 14 and 15 of /proc/<pid>/stat)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # The command name (field 2) may hold spaces; everything after its ')' is fixed.
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def tree_cpu_seconds(self) -> float:
        """utime + stime of the process and its children (nginx: the master and its worker)."""
        return sum(_cpu_of(pid) for pid in (self.pid, *_descendants(self.pid)))

    def rss_bytes(self) -> int:
        statm = Path(f"/proc/{self.pid}/statm").read_text().split()
        return int(statm[1]) * PAGE_SIZE

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: the gateway flushes its request log before it exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise BenchError(f"{self.name} did not exit within {timeout:g}s of SIGTERM") from None


def stop_all(services: list[Service], timeout: float = 30.0) -> None:
    """Stop what is still running, last started first (a bench's `finally`: never raises)."""
    for service in reversed(services):
        if service.process.poll() is None:
            try:
                service.stop(timeout)
            except BenchError:
                pass


def _cpu_of(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def start(name: str, argv: list[str], log_path: Path, *, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> Service:
    out = log_path.open("wb")
    try:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
            env=env,
        )
    finally:
        out.close()
    return Service(name, process, log_path)


def wait_ready(service: Service, url: str, timeout: float = 60.0) -> None:
    """Poll `url` until it answers 2xx; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise BenchError(
                f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    service.process.kill()
    raise BenchError(f"{service.name} did not answer {url} within {timeout:g}s:\n{service.log_tail()}")
