"""Start the gateway and the fake upstream as real processes (as users and the demo run them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_ADDRESS = re.compile(r"Running on (http://[\d.]+:\d+)")


def start(args: list[str], log_path: Path, timeout: float = 20) -> tuple[subprocess.Popen, str]:
    """Run `python -m <args>` and wait for aiohttp's 'Running on' banner; returns (proc, url)."""
    log = open(log_path, "w+b")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        match = _ADDRESS.search(text)
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited {proc.returncode}:\n{text}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{args[0]} did not start:\n{log_path.read_text(errors='replace')}")


def stop(proc: subprocess.Popen, timeout: float = 20) -> int:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
