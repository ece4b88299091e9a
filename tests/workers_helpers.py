"""Helpers for the `serve --workers N` tests: start a supervised gateway, find its workers,
and tell which worker holds a given client connection (from /proc, as `ss -p` would)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

_STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


def worker_pids(log_path: Path) -> dict[int, int]:
    """{worker index: pid} of the workers running now (the latest start of each index)."""
    pids: dict[int, int] = {}
    for index, pid in _STARTED.findall(log_path.read_text(errors="replace")):
        pids[int(index)] = int(pid)
    return pids


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def _inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server side of the TCP connection 127.0.0.1:client_port → server_port."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[9])
    return None


def serving_pid(pids: list[int], server_port: int, client_port: int) -> int | None:
    """Which of `pids` has accepted the connection from `client_port` (None: none yet)."""
    inode = _inode(server_port, client_port)
    if not inode:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None
