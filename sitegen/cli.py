"""Command line of the report generator (`python -m sitegen`, console script `shin-report`).

Subcommands register themselves in `COMMANDS`; sitegen.entry runs them and turns every error
into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from proxy.config import config_path as find_config
from proxy.config import load_config
from proxy.settings import ReportSettings

from . import entry
from .alerts.cli import add_alerts
from .alerts.state import default_state_path
from .build import BuildOptions, build_site
from .cache import default_dir
from .data import Clock
from .progress import Progress
from .sources import Sources

BUILD_HELP = """\
Render the request log into a static site: Overview, Cost, Usage, Breakdowns, Performance,
Errors, Pricing coverage, Models, Keys and Logs pages, every table and chart with its CSV and
JSON beside it. Budgets, keys, users and teams come from keys.db, read-only; a build without
one says so and builds the rest. Models come from config.yaml's model_list (never its
secrets) and the deployments added at run time.

The database is opened read-only. The site is built in a temporary folder next to --out and
swapped in at the end, so a failed build leaves the published site as it was.
Set SOURCE_DATE_EPOCH to fix "now" (identical files for the same database); the windows end
just after it, so a request logged in that very second is in.

On a log with hourly rollups the long windows come from the report's cache of hourly
aggregates (--cache-dir): a build reads the rows logged since the last build, not the whole
history. The cache is safe to delete; it is never mixed with another or a restored database.

examples:
  python -m sitegen build
  python -m sitegen build --db /var/lib/shin/litellm.db --out /srv/www/report
  SOURCE_DATE_EPOCH=1767225600 python -m sitegen build --db litellm.db --out public
"""


def report_settings(path: Path | None) -> ReportSettings:
    """The `report:` section of config.yaml, validated by the gateway's own config code (the
    rest stays unread: a cron job need not have the providers' API keys)."""
    return load_config(path, only={"report": None}).report


def alerts_state_file(path: Path | None) -> Path | None:
    """alerts.state_file of config.yaml, if it names one (the overview shows its alerts)."""
    state_file = load_config(path, only={"alerts": ("state_file",)}).alerts.get("state_file")
    return Path(state_file) if state_file else None


def build_sources(path: Path | None, db: Path, keys_db: Path | None) -> Sources:
    """keys.db as `serve` finds it (--keys-db, else general_settings.keys_database_path, else
    beside the log), the gateway budget and report.breakdowns; provider settings stay unread."""
    config = load_config(path, only={
        "report": ("breakdowns", "logs_rows"),
        "litellm_settings": ("max_budget", "budget_duration"),
        "general_settings": ("keys_database_path",),
    })
    found = keys_db or Path(config.general.keys_database_path or db.with_name("keys.db"))
    return Sources(
        keys_db=found,
        gateway_max_budget=config.litellm.max_budget,
        gateway_budget_duration=config.litellm.budget_duration,
        breakdowns=tuple(config.report.breakdowns),
        config=path,
        logs_rows=config.report.logs_rows,
    )


def cache_folder(args: argparse.Namespace, report: ReportSettings) -> Path | None:
    """--cache-dir, else report.cache_dir, else the user's cache folder; None with --no-cache."""
    if args.no_cache:
        return None
    return args.cache_dir or (Path(report.cache_dir) if report.cache_dir else default_dir())


def _build(args: argparse.Namespace) -> int:
    config_path = find_config(args.config)
    report = report_settings(config_path)
    options = BuildOptions(
        db=args.db,
        out=args.out,
        title=args.title or report.title,
        datasette_url=args.datasette_url or report.datasette_url,
        alerts_state=alerts_state_file(config_path) or default_state_path(args.db),
        sources=build_sources(config_path, args.db, args.keys_db),
        cache_dir=cache_folder(args, report),
        rollups=not args.no_rollups,
    )
    progress = Progress(quiet=args.quiet)
    result = build_site(options, Clock.from_environment(), progress)
    progress.summary(
        f"{result.rows:,} rows read, {result.pages} pages, {result.charts} charts, "
        f"{result.tables} tables, {result.files} files in {result.seconds:.2f} s -> {args.out}"
    )
    return 0


def _add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build", help="render the static site", description=BUILD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", type=Path, default=Path("litellm.db"),
                   help="request log database (default: litellm.db)")
    p.add_argument("--out", type=Path, default=Path("public"),
                   help="output folder, replaced atomically (default: public)")
    p.add_argument("--config", type=Path, default=None,
                   help="config.yaml for the report: section (default: ./config.yaml if present)")
    p.add_argument("--keys-db", type=Path, default=None,
                   help="virtual keys and budgets, read-only (default: as the gateway finds it, "
                   "keys.db beside --db)")
    p.add_argument("--title", help="site title (default: report.title of the config)")
    p.add_argument("--datasette-url", help="link tables to this Datasette (default: "
                   "report.datasette_url of the config)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="the report cache's folder (default: report.cache_dir of the config, "
                   "else $XDG_CACHE_HOME/shin-report or ~/.cache/shin-report)")
    p.add_argument("--no-cache", action="store_true",
                   help="keep no cache: this build computes its aggregates in memory")
    p.add_argument("--no-rollups", action="store_true",
                   help="read every table from the raw rows, as on a log without rollups "
                   "(exact percentiles; slow on a big log)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=_build)


#: Each adds one subcommand; e.g. alerts can be added here without touching the rest.
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_build, add_alerts]


def parser() -> argparse.ArgumentParser:
    return entry.parser(COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    return entry.run(COMMANDS, argv)
