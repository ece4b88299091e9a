"""Atomic publishing: build in a temporary folder beside the output, then swap it in.

On Linux the swap is one renameat2(RENAME_EXCHANGE) call, so a web server sees either the old
site or the new one, never a missing folder. Elsewhere (or on a filesystem without it) it is two
renames in quick succession. A failed build removes its temporary folder and leaves the
published site untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import PublishError
from .render import MARKER

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
# Files a fresh output folder may already hold without being "someone else's folder".
_HARMLESS = {".gitkeep", MARKER}


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False when the platform or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def check_replaceable(out: Path) -> None:
    """Refuse to replace a folder this tool did not build (e.g. a typo'd --out ~)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise PublishError(f"{out}: exists and is not a folder")
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        if names - _HARMLESS and MARKER not in names:
            raise PublishError(
                f"{out}: not empty and not a site built by shin-report; choose another --out"
            )


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out` (same filesystem, so the final rename is atomic)."""
    out = out.absolute()
    check_replaceable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    except OSError as exc:
        raise PublishError(f"{out.parent}: cannot create the build folder ({exc.strerror})") from None
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out: Path, epoch: int | None = None) -> None:
    """Swap the finished build `tmp` into place at `out` and drop the previous site."""
    out = out.absolute()
    keep = out / ".gitkeep"
    if keep.exists():
        # public/ is committed with a .gitkeep; keep it so `git status` stays clean.
        (tmp / ".gitkeep").write_bytes(keep.read_bytes())
    if epoch is not None:
        for path in sorted(tmp.rglob("*"), reverse=True):
            os.utime(path, (epoch, epoch), follow_symlinks=False)
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a web server must read it
    try:
        if out.exists():
            if _exchange(tmp, out):
                shutil.rmtree(tmp)  # now holds the previous site
                return
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except OSError as exc:
        raise PublishError(f"{out}: cannot publish the new site ({exc.strerror})") from None
