"""Latency percentiles on a log file without hourly rollups.

`latency_percentiles` reads the rollup tables that migration 0003 adds (the gateway migrates its
file when it starts). A file no gateway of this version has opened (a backup of an older one,
a log written by an older gateway) has none, and Datasette only reads: for such a file this
swaps in `latency_percentiles_exact` (the same percentiles from the raw rows: exact, but slow
on a big log) under the same name, and says at start-up how to add the rollups.
"""

from __future__ import annotations

import sys

from datasette import hookimpl

ROLLUP_TABLE = "rollup_latency"
LOG_TABLE = "request_log"
FAST = "latency_percentiles"
EXACT = "latency_percentiles_exact"
INTERNAL_DATABASE = "_internal"

NO_ROLLUPS = (
    "This file has no hourly rollups (no gateway of this version has opened it): exact from "
    "the raw rows instead, which is slow on a big log. `python -m proxy migrate --db FILE` "
    "adds them."
)


async def _lacks_rollups(db) -> bool:
    """A request log without the rollup tables (any other database is left alone)."""
    return await db.table_exists(LOG_TABLE) and not await db.table_exists(ROLLUP_TABLE)


@hookimpl
def canned_queries(datasette, database, actor):
    db = datasette.databases.get(database)
    if db is None or database == INTERNAL_DATABASE or db.is_memory:
        return None

    async def exact_instead():
        if not await _lacks_rollups(db):
            return None
        queries = datasette.metadata("queries", database=database, fallback=False) or {}
        exact = queries.get(EXACT)
        if not isinstance(exact, dict) or "sql" not in exact:
            return None
        description = f"{exact.get('description', '')} {NO_ROLLUPS}".strip()
        return {FAST: {**exact, "description": description}}

    return exact_instead


@hookimpl
def startup(datasette):
    async def warn_without_rollups():
        for name, db in datasette.databases.items():
            if name == INTERNAL_DATABASE or db.is_memory:
                continue
            if await _lacks_rollups(db):
                print(f"shin: {db.path} has no hourly rollups, so {FAST} reads every raw row "
                      f"(slow on a big log). Add them with: python -m proxy migrate --db {db.path}",
                      file=sys.stderr)

    return warn_without_rollups
