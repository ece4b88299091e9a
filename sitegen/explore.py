"""`shin-explore` (`make explore`): Datasette on the request log, read-only, with the canned
queries the report links to. The one definition of how Datasette is run, in a checkout or from
an installed wheel.

- Only litellm.db: the plugins in datasette/ refuse to start on a file without `request_log`
  (keys.db holds key hashes and budgets; a table hidden in Datasette can still be read with
  ad-hoc SQL) and set `PRAGMA query_only=1` on every connection of the served file.
- Never `--immutable`: on a file the gateway keeps writing, Datasette then serves "database
  disk image is malformed" errors and stale counts.
- suggest_facets off: 1.5 s → 0.1 s per table page at 1M rows. At 1M rows the 30-day GROUP
  BYs take 0.1-0.5 s and latency_percentiles_exact?days=90 (raw rows) 3-10 s on two busy cores,
  hence the 10 s limit (latency_percentiles reads the hourly rollups: under 1 s at 5M rows);
  1000 rows cover 30 days of hourly_throughput. No downloads of the database file, no caching
  of answers that change with every request.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from proxy import __version__
from proxy.resources import MissingResource, data_path

DEFAULT_PORT = 8001
SETTINGS = {
    "suggest_facets": "off",
    "sql_time_limit_ms": "10000",
    "max_returned_rows": "1000",
    "allow_download": "off",
    "default_cache_ttl": "0",
}

EPILOG = """\
examples:
  shin-explore                                    # ./litellm.db on http://127.0.0.1:8001
  shin-explore --db /var/lib/shin/litellm.db --host 0.0.0.0 --port 8001
  DATASETTE_PASSWORD_HASH=$(datasette hash-password) shin-explore   # every page needs a login

Environment: DATASETTE_PASSWORD_HASH and DATASETTE_USERNAME (default admin) require a login;
DATASETTE_REPORT_URL is where the "Monitoring report" link points (default the gateway's /ui).
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shin-explore",
        description="Ad-hoc SQL over the request log: Datasette, read-only, serving litellm.db only.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", type=Path, default=Path("litellm.db"),
                   help="request log database, never keys.db (default: litellm.db)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--metadata", type=Path, default=None,
                   help="Datasette metadata file (default: the canned queries shipped in datasette/metadata.yml)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def datasette_args(db: Path, host: str, port: int, metadata: Path | None = None) -> list[str]:
    """The `datasette serve` arguments for one request log."""
    args = [
        "serve", str(db), "--host", host, "--port", str(port),
        "--metadata", str(metadata or data_path("datasette", "metadata.yml")),
        "--plugins-dir", str(data_path("datasette", "plugins")),
    ]
    for name, value in SETTINGS.items():
        args += ["--setting", name, value]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.db.is_file():
        # Datasette would serve every database of a folder, or stop with a usage message.
        print(f"shin-explore: {args.db}: no such database file", file=sys.stderr)
        return 2
    try:
        command = datasette_args(args.db, args.host, args.port, args.metadata)
    except MissingResource as exc:
        print(f"shin-explore: {exc}", file=sys.stderr)
        return 1
    from datasette.cli import cli

    # Datasette's own command line, in this process; it exits with its status, and its errors
    # (a refusing plugin's included) are one line on stderr.
    cli.main(command, prog_name="shin-explore")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
