"""Keeps `make explore` read-only and limited to the gateway's request log.

Datasette opens database files with `mode=ro`, but it also keeps a read-write connection per
file for canned write queries and plugins. `PRAGMA query_only=1` on every connection of the
served files closes that path too: any INSERT/UPDATE/DELETE/DROP fails inside SQLite, whatever
route or plugin issued it.
"""

from __future__ import annotations

import click

from datasette import hookimpl

LOG_TABLE = "request_log"

#: Datasette's own in-memory catalogue: Datasette writes it on every schema refresh, so making
#: it query-only makes every page fail. It never holds request data.
INTERNAL_DATABASE = "_internal"


@hookimpl
def prepare_connection(conn, database, datasette):
    if database != INTERNAL_DATABASE:
        conn.execute("PRAGMA query_only=1")


@hookimpl
def startup(datasette):
    async def refuse_anything_but_the_log():
        for name, db in datasette.databases.items():
            if name == INTERNAL_DATABASE or db.is_memory:
                continue
            if not db.is_mutable:
                # Immutable mode promises SQLite the file never changes: with the gateway
                # writing, pages fail with "database disk image is malformed" or show stale counts.
                raise click.ClickException(
                    f"{db.path}: serve the live request log as a plain file, not with "
                    "--immutable/-i (the gateway keeps writing to it)"
                )
            if not await db.table_exists(LOG_TABLE):
                # keys.db (key hashes, budgets) must never be served: a table hidden in
                # Datasette can still be read with ad-hoc SQL.
                raise click.ClickException(
                    f"{db.path} is not a Shin Gateway request log (it has no {LOG_TABLE} "
                    "table); serve litellm.db only, never keys.db"
                )

    return refuse_anything_but_the_log
