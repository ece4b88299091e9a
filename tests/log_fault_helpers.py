"""Faults for the request-log tests: a real full file system, a read-only file, traffic."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .conftest import MASTER_KEY


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "2m") -> Iterator[Path]:
    """A size-limited file system mounted at `where` (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root; the max_page_count test covers a full database")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill_disk(directory: Path) -> Path:
    """Write a file until the file system is full; delete it to clear the fault."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return filler


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Callable[[], None]]:
    """Make `path` read-only for this process even as root (immutable flag; chmod otherwise).
    Yields a function that makes it writable again (also called on exit)."""
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a file read-only for root here: {done.stderr.strip()}")

        def undo() -> None:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        path.chmod(0o444)

        def undo() -> None:
            path.chmod(0o644)
    try:
        yield undo
    finally:
        undo()


async def chat(url: str, n: int, *, tag: str, stream_every: int = 3) -> list[str]:
    """`n` chat requests (every `stream_every`-th streamed); their request ids, all answered 200."""
    async def one(http: aiohttp.ClientSession, i: int) -> str:
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"{tag} {i}"}]}
        if i % stream_every == 0:
            body["stream"] = True
        async with http.post(f"{url}/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {MASTER_KEY}"}) as resp:
            await resp.read()
            assert resp.status == 200
            return resp.headers["x-litellm-call-id"]

    async with aiohttp.ClientSession() as http:
        return list(await asyncio.gather(*(one(http, i) for i in range(n))))


async def health(url: str, path: str = "/health") -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}{path}") as resp:
        return resp.status, await resp.json()


async def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def logged_ids(db: Path) -> list[str]:
    """request_id of every row (duplicates kept), read by a separate connection."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        return [row[0] for row in conn.execute("SELECT request_id FROM request_log")]
    finally:
        conn.close()


def assert_each_once(db: Path, sent: list[str]) -> None:
    ids = logged_ids(db)
    assert len(ids) == len(set(ids)), "a row was logged twice"
    assert set(ids) == set(sent), f"{len(set(sent) - set(ids))} rows missing"


def spill_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
