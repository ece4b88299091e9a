"""`shin-proxy backup|prune|merge|migrate`: argument parsing and output for proxy/ops."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..settings import Config

BACKUP_EXAMPLES = """examples:
  shin-proxy backup --config config.yaml                 # litellm.db + keys.db into backups/
  shin-proxy backup --db /var/lib/shin/litellm.db --dest /srv/backups --keep 14
  make backup KEEP=30
"""

PRUNE_EXAMPLES = """examples:
  shin-proxy prune --days 90 --dry-run                   # how many rows would go
  shin-proxy prune --config config.yaml --days 90        # delete rows older than 90 days
  shin-proxy prune --days 30 --archive archive/          # gzip JSON lines per month first
  shin-proxy prune --days 30 --archive archive/ --archive-format sqlite --vacuum
  make prune DAYS=90
"""


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (every command's counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c",
                        help="config.yaml for the database paths (default: ./config.yaml when present)")
    parser.add_argument("--db", help="request log SQLite file (default general_settings.database_path)")


#: The only settings backup and prune read. A cron job has none of the providers' API keys in
#: its environment, so the rest of config.yaml (and its os.environ/ references) stays unread.
OPS_SETTINGS = ("database_path", "keys_database_path", "retention_days", "retention_archive_dir")


def _config(args: argparse.Namespace) -> Config:
    from ..config import config_path, load_config

    path = config_path(args.config)
    if path is None:
        return Config()
    return load_config(path, only={"general_settings": OPS_SETTINGS})


def _db_path(args: argparse.Namespace, config: Config) -> Path:
    return Path(args.db or config.general.database_path)


# -- backup --------------------------------------------------------------------------------


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Consistent copies of litellm.db and keys.db (SQLite online backup API, not cp)\n"
                          "while the gateway writes, named <db>-YYYYMMDDTHHMMSSZ.db (UTC), keeping the last N.")
    parser.epilog = BACKUP_EXAMPLES
    _common(parser)
    parser.add_argument("--keys-db", help="virtual keys SQLite file (default keys.db beside --db)")
    parser.add_argument("--dest", default="backups", help="backup folder (default backups/)")
    parser.add_argument("--keep", type=positive_int, default=7,
                        help="backups of each database to keep, newest first (default 7)")
    parser.add_argument("--no-verify", action="store_true", help="skip PRAGMA quick_check on the copy")


def run_backup(args: argparse.Namespace) -> int:
    """Back up litellm.db and keys.db while the gateway runs."""
    from .backup import backup_databases

    config = _config(args)
    db = _db_path(args, config)
    keys = Path(args.keys_db or config.general.keys_database_path or db.with_name("keys.db"))
    result = backup_databases(db, keys, args.dest, keep=args.keep, verify=not args.no_verify)
    for path in result.written:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    for note in result.skipped:
        print(f"skipped {note}")
    for path in result.removed:
        print(f"removed old backup {path}")
    return 0


# -- prune ---------------------------------------------------------------------------------


def add_prune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Delete request-log rows older than --days in small batches while the gateway keeps\n"
                          "serving, optionally archiving them first. keys.db and budgets are never touched.\n"
                          "Freed pages are reused by new rows; --vacuum also shrinks the file.")
    parser.epilog = PRUNE_EXAMPLES
    _common(parser)
    parser.add_argument("--days", type=positive_int,
                        help="keep this many days (default general_settings.retention_days)")
    parser.add_argument("--archive", metavar="DIR", help="archive deleted rows here first, one file per month")
    parser.add_argument("--archive-format", choices=("jsonl", "sqlite"), default="jsonl",
                        help="jsonl: request_log-YYYY-MM.jsonl.gz; sqlite: request_log-YYYY-MM.db")
    parser.add_argument("--vacuum", action="store_true",
                        help="then shrink the file with VACUUM (blocks writes while it runs)")
    parser.add_argument("--batch-size", type=positive_int, default=2000, help="rows per transaction")
    parser.add_argument("--dry-run", action="store_true", help="only count the rows that would go")


def run_prune(args: argparse.Namespace) -> int:
    """Delete request-log rows older than a retention window."""
    from .prune import count_old, prune_request_log

    config = _config(args)
    db = _db_path(args, config)
    days = args.days or config.general.retention_days
    if not days:
        raise ConfigError("prune needs --days N (or general_settings.retention_days)")
    if args.dry_run:
        cutoff, count = count_old(db, days)
        print(f"{count:,} rows older than {days} days (before {cutoff} UTC) would be deleted from {db}")
        return 0
    result = prune_request_log(db, days, archive_dir=args.archive, archive_format=args.archive_format,
                               batch_size=args.batch_size, vacuum=args.vacuum)
    print(f"deleted {result.deleted:,} rows older than {days} days (before {result.cutoff} UTC) from {db}")
    for path, rows in sorted(result.archived.items()):
        print(f"archived {rows:,} rows to {path}")
    if result.vacuumed:
        print(f"{result.vacuumed} vacuum: {result.size_before:,} -> {result.size_after:,} bytes")
    elif result.deleted:
        print("freed pages will be reused by new rows; pass --vacuum to shrink the file now")
    return 0


# -- merge ---------------------------------------------------------------------------------

MERGE_EXAMPLES = """examples:
  shin-proxy merge --into report.db host-a.db host-b.db     # names from the shards themselves
  shin-proxy merge --into report.db a=/srv/pull/a/litellm.db b=/srv/pull/b/litellm.db
  make report DB=report.db && make explore DB=report.db
"""


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Copy the request logs of several hosts (their backups, or live files) into one\n"
                          "database for the report and Datasette. Incremental and idempotent: only rows\n"
                          "not merged yet (by request_id) are copied; each gets a host column.")
    parser.epilog = MERGE_EXAMPLES
    parser.add_argument("--into", required=True, metavar="REPORT_DB",
                        help="the merged database (created if missing)")
    parser.add_argument("shards", nargs="+", metavar="[NAME=]SHARD_DB",
                        help="a host's litellm.db or backup; NAME= sets its host name (default: the "
                             "hostname the gateway recorded in it, else the file name)")
    parser.add_argument("--batch-size", type=positive_int, default=20_000, help="rows per transaction")


def run_merge(args: argparse.Namespace) -> int:
    """Merge several hosts' request logs into one database."""
    from .merge import merge_logs, parse_shard

    result = merge_logs(args.into, [parse_shard(text) for text in args.shards], batch_size=args.batch_size)
    for shard in result.shards:
        note = (" (older than what was merged from it: each row checked)" if shard.older else
                " (high-water mark did not fit this file: each row checked)" if shard.full_scan else "")
        print(f"{shard.host}: {shard.copied:,} new rows of {shard.seen:,} read from {shard.path}{note}")
    print(f"merged {result.copied:,} new rows into {result.target}")
    return 0


# -- migrate -------------------------------------------------------------------------------


MIGRATE_EXAMPLES = """examples:
  shin-proxy migrate --db backups/litellm-20250101T000000Z.db
  shin-proxy migrate --config config.yaml                 # general_settings.database_path
"""


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Bring a request log up to date (the gateway does this when it starts): for a\n"
                          "backup, a file from an older gateway, or before `make explore` on one. Adds and\n"
                          "backfills the hourly rollups; holds the write lock while it runs.")
    parser.epilog = MIGRATE_EXAMPLES
    _common(parser)


def run_migrate(args: argparse.Namespace) -> int:
    """Apply the request log's migrations (rollups backfilled) to a database file."""
    import sqlite3

    from ..errors import OperationError
    from ..logdb.schema import migrate
    from ..migrations import schema_version

    db = _db_path(args, _config(args))
    if not db.is_file():
        raise OperationError(f"{db}: no such database (is --db right?)")
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        before = schema_version(conn)
        after = migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise OperationError(f"{db}: cannot migrate: {exc}") from None
    finally:
        conn.close()
    print(f"{db}: schema version {before} -> {after}" if after != before else f"{db}: up to date (version {after})")
    return 0


BACKUP = (add_backup_arguments, run_backup)
PRUNE = (add_prune_arguments, run_prune)
MERGE = (add_merge_arguments, run_merge)
MIGRATE = (add_migrate_arguments, run_migrate)
