"""Consistent copies of litellm.db and keys.db while the gateway keeps writing.

`cp` on a WAL database can copy the main file and the -wal file at different moments (a torn
copy). SQLite's online backup API copies one read snapshot instead. In WAL mode a reader never
blocks the writer, so the whole copy runs as one step: one snapshot, no restarts when the
gateway commits mid-copy, and the gateway's writer is never held up.

Files land in DEST as `<stem>-YYYYMMDDTHHMMSSZ.db` (UTC). Only files of exactly that shape are
ever deleted when keeping the last N, so a backups/ folder shared with anything else is safe.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OperationError

log = logging.getLogger("proxy.ops.backup")

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_STAMP_RE = r"\d{8}T\d{6}Z"


@dataclass
class BackupResult:
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why a source was not copied


def stamp(epoch: float | None = None) -> str:
    return time.strftime(STAMP_FORMAT, time.gmtime(time.time() if epoch is None else epoch))


def backup_file(source: str | Path, target: str | Path, *, verify: bool = True) -> Path:
    """Copy one SQLite database with the backup API into `target` (a standalone file).

    The copy is written beside the target as `.partial` and renamed only once complete (and
    verified), so a crash or a full disk never leaves a half-written file under a backup name.
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise OperationError(f"{source}: no such database")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    # Read-write open (never used to write): a read-only connection cannot recover a WAL
    # left by a crashed gateway, nor open one whose -shm file is missing.
    src = sqlite3.connect(source)
    try:
        src.execute("PRAGMA busy_timeout=5000")
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: one step, one snapshot
            # The copied header says WAL; a backup is one self-contained file.
            dst.execute("PRAGMA journal_mode=DELETE")
            if verify:
                problems = [row[0] for row in dst.execute("PRAGMA quick_check")]
                if problems != ["ok"]:
                    raise OperationError(f"{source}: backup failed its check: {problems[:3]}")
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        partial.unlink(missing_ok=True)
        raise OperationError(f"{source}: cannot back up: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return target


def backups_of(dest: str | Path, stem: str) -> list[Path]:
    """Backups of `stem` in `dest`, oldest first (the stamp sorts chronologically)."""
    pattern = re.compile(rf"{re.escape(stem)}-{_STAMP_RE}\.db")
    folder = Path(dest)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name))


def keep_last(dest: str | Path, stem: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups of `stem`; returns what was removed."""
    if keep < 1:
        raise OperationError(f"keep must be at least 1, got {keep}")
    removed = backups_of(dest, stem)[:-keep]
    for path in removed:
        path.unlink()
    return removed


def backup_databases(
    db_path: str | Path,
    keys_db_path: str | Path | None,
    dest: str | Path,
    *,
    keep: int = 7,
    now: float | None = None,
    verify: bool = True,
) -> BackupResult:
    """Back up the request log (required) and the keys database (when it exists)."""
    if keep < 1:
        raise OperationError(f"--keep must be at least 1, got {keep}")
    db_path = Path(db_path)
    if not db_path.is_file():
        raise OperationError(f"{db_path}: no such database (is --db right?)")
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    when = stamp(now)
    result = BackupResult()
    sources = [db_path]
    if keys_db_path is not None:
        keys = Path(keys_db_path)
        if keys.is_file():
            sources.append(keys)
        else:
            result.skipped.append(f"{keys}: not found (no virtual keys yet)")
    for source in sources:
        target = folder / f"{source.stem}-{when}.db"
        backup_file(source, target, verify=verify)
        result.written.append(target)
        result.removed.extend(keep_last(folder, source.stem, keep))
        log.info("backup: %s -> %s", source, target)
    return result
