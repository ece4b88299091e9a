"""The SQLite backend of the EntityStore and SpendLedger interfaces: one keys.db connection on
one worker thread, so admin writes and spend increments reach the file in the order they were
made and never block the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..records import Ref
from .base import Charge, Snapshot
from .sqlite import KeysDB

T = TypeVar("T")


class SqliteBackend:
    """Implements EntityStore and SpendLedger (store/base.py) on keys.db."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._db: KeysDB | None = None  # used on the executor thread only

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None, "open() has not run"
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    @property
    def db(self) -> KeysDB:
        assert self._db is not None
        return self._db

    # -- EntityStore ----------------------------------------------------------------------
    async def open(self) -> Snapshot:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keys-db")
        try:
            return await self._run(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)  # aiohttp runs no cleanup for a failed start
            self._executor = None
            raise

    def _open(self) -> Snapshot:
        self._db = KeysDB(self.path)
        return self._db.load()

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._db is not None:
            await self._run(self._db.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def change_token(self) -> object:
        return await self._run(lambda: self.db.data_version())

    async def load(self) -> Snapshot:
        return await self._run(lambda: self.db.load())

    async def get(self, kind: str, ident: str) -> Any | None:
        return await self._run(lambda: self.db.get(kind, ident))

    async def insert(self, record: Any) -> None:
        await self._run(lambda: self.db.insert(record))

    async def update(self, record: Any) -> bool:
        return await self._run(lambda: self.db.update(record))

    async def delete(self, kind: str, idents: Iterable[str]) -> int:
        idents = list(idents)
        return await self._run(lambda: self.db.delete(kind, idents))

    async def apply(self, inserts: Sequence[Any], updates: Sequence[Any], deletes: Sequence[Ref]) -> None:
        await self._run(lambda: self.db.apply(inserts, updates, deletes))

    # -- SpendLedger ----------------------------------------------------------------------
    async def charge(self, charges: Sequence[Charge]) -> dict[Ref, tuple[float, float | None]]:
        return await self._run(lambda: self.db.charge(charges))

    async def set_spend(self, ref: Ref, spend: float) -> None:
        await self._run(lambda: self.db.set_spend(ref, spend))

    async def save_global(self, spend: float, budget_duration: str | None, reset_at: float | None) -> None:
        now = time.time()
        await self._run(lambda: self.db.save_global(spend, budget_duration, reset_at, now))


