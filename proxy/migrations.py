"""Numbered SQL migrations for our SQLite files (the request log and keys.db).

A package's `migrations/NNNN_name.sql` files are applied in order, each inside one
transaction, and recorded in `PRAGMA user_version`: opening an older file brings it up to date,
and a failing migration leaves it at the previous version.
"""

from __future__ import annotations

import sqlite3
from importlib import resources


def load(package: str) -> list[tuple[int, str, str]]:
    """(number, file name, sql) of every migration shipped in `package`/migrations, in order."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def apply(conn: sqlite3.Connection, package: str) -> int:
    """Apply pending migrations of `package` on an autocommit connection; returns the version."""
    current = schema_version(conn)
    for number, _name, sql in load(package):
        if number <= current:
            continue
        # executescript() would commit first; run the statements in our own transaction.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number:d}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        current = number
    return current


def statements(sql: str) -> list[str]:
    """Split a script into complete statements (comments and blank tails dropped)."""
    out, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        out.append(buffer.strip())
    return out
