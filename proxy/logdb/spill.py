"""The spill file: request-log rows the database could not take, kept until it can.

One JSON object per line, appended and fsynced per batch:
    {"request_id": "...", "spilled_at": "...", "reason": "database is locked", "row": {...}}
The writer replays the lines in order once the database accepts writes again (a row whose
request_id is already in request_log is skipped, so a replay cut short by a crash can simply
run again), then truncates the file. Rows SQLite refuses outright never enter the database:
they go to the refused file beside it (same shape plus "refused": true), which is only ever
appended to, for an operator to read.

Several processes may share one database (one spill file each): a process owns a spill file
while it holds an exclusive flock on it, and takes the first free name of
`<name>.jsonl`, `<name>-2.jsonl`, … At start-up it also adopts the files no live process
holds (a worker that is gone) by copying their lines into its own, so every spilled row is
replayed by someone.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .record import utc_timestamp

log = logging.getLogger("proxy.logdb")

_MAX_SLOTS = 64
_CHUNK = 1 << 20


def default_spill_path(db_path: str | Path) -> Path:
    db = Path(db_path)
    return db.with_name(db.name + "-spill.jsonl")


def refused_path(spill_path: str | Path) -> Path:
    spill = Path(spill_path)
    stem = spill.name.removesuffix(".jsonl").removesuffix("-spill")
    return spill.with_name(stem + "-refused.jsonl")


def entry(row: dict[str, Any], reason: str, *, refused: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "request_id": row.get("request_id"),
        "spilled_at": utc_timestamp(),
        "reason": reason,
    }
    if refused:
        item["refused"] = True
    item["row"] = row
    return item


def encode(entries: Iterable[dict[str, Any]]) -> bytes:
    # default=repr: a refused row may hold the very value SQLite would not take.
    lines = (json.dumps(e, ensure_ascii=False, default=repr) for e in entries)
    return "".join(line + "\n" for line in lines).encode("utf-8", "backslashreplace")


def append_synced(path: Path, data: bytes) -> None:
    """Append and fsync (the refused file: rare, shared by processes through O_APPEND)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class SpillFile:
    """The spill file this process owns. Not thread-safe: only the writer thread uses it
    (and start() before that thread runs)."""

    def __init__(self, path: str | Path) -> None:
        self.base = Path(path)
        self.path: Path | None = None  # the file we hold the lock on, once we need one
        self._fd: int | None = None
        self.offset = 0  # bytes already replayed
        self.pending = 0  # lines after `offset`

    # -- ownership ------------------------------------------------------------------------
    def _slots(self) -> list[Path]:
        stem = self.base.name.removesuffix(".jsonl")
        return [self.base] + [self.base.with_name(f"{stem}-{n}.jsonl") for n in range(2, _MAX_SLOTS + 1)]

    def _lock(self, path: Path, *, create: bool) -> int | None:
        """An fd holding the exclusive lock on `path`, or None if another process holds it."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Locked a file another process has just unlinked (after adopting it)? Not ours.
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        return fd

    def _own(self) -> int:
        if self._fd is not None:
            return self._fd
        self.base.parent.mkdir(parents=True, exist_ok=True)
        for path in self._slots():
            fd = self._lock(path, create=True)
            if fd is not None:
                self._fd, self.path = fd, path
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    _write_all(fd, b"\n")  # a torn last line must not swallow the next one
                return fd
        raise OSError(f"all {_MAX_SLOTS} spill file names beside {self.base} are in use")

    def recover(self) -> int:
        """At start-up: own a file if any spilled rows exist, adopt orphans; rows to replay."""
        existing = [p for p in self._slots() if p.exists()]
        if not existing:
            return 0
        fd = self._own()
        for path in existing:
            if path == self.path:
                continue
            other = self._lock(path, create=False)
            if other is None:
                continue  # a live process owns it and replays it itself
            try:
                data = _read_all(other)
                if data:
                    if not data.endswith(b"\n"):
                        data += b"\n"
                    _write_all(fd, data)
                    os.fsync(fd)
                    log.warning("request log: adopted %d spilled rows from %s", data.count(b"\n"), path)
                path.unlink()
            finally:
                os.close(other)
        self.offset = 0
        self.pending = _count_lines(fd)
        return self.pending

    # -- writing --------------------------------------------------------------------------
    def append(self, entries: list[dict[str, Any]]) -> None:
        """Append the entries and fsync; raises OSError (disk full, read-only, …)."""
        fd = self._own()
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, encode(entries))
            os.fsync(fd)
        except OSError:
            # Half a batch on disk would be replayed without the rest: cut it off again.
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
        self.pending += len(entries)

    # -- replay ---------------------------------------------------------------------------
    def read(self, limit: int) -> tuple[list[dict[str, Any] | None], int, int]:
        """Up to `limit` lines after `offset`: their entries (None for a line that is not an
        entry), the offset after them and how many lines that was (blank ones included).
        `consumed()` moves `offset` once the entries are safely in the database."""
        items: list[dict[str, Any] | None] = []
        end, lines = self.offset, 0
        if self._fd is None:
            return items, end, lines
        buf = b""
        while lines < limit:
            data = os.pread(self._fd, _CHUNK, end + len(buf))
            if not data:
                break
            buf += data
            while lines < limit:
                cut = buf.find(b"\n")
                if cut < 0:
                    break
                line, buf = buf[:cut], buf[cut + 1 :]
                end += cut + 1
                lines += 1
                if line.strip():
                    items.append(_decode(line))
        return items, end, lines

    def consumed(self, offset: int, count: int) -> None:
        self.offset = offset
        self.pending = max(0, self.pending - count)

    def truncate_if_done(self) -> bool:
        """Empty the file once every line is replayed; True when it was emptied."""
        if self._fd is None or self.pending:
            return False
        if os.fstat(self._fd).st_size != self.offset:
            return False  # appended to since (cannot happen on the writer thread; be safe)
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.offset = 0
        return True

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            if self.path is not None and os.fstat(self._fd).st_size == 0:
                self.path.unlink()  # nothing left to replay: leave no empty file behind
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    return item if isinstance(item, dict) and isinstance(item.get("row"), dict) else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0) if size else b""


def _count_lines(fd: int) -> int:
    count, offset = 0, 0
    while data := os.pread(fd, _CHUNK, offset):
        count += data.count(b"\n")
        offset += len(data)
    return count
