"""The one place sitegen's commands are parsed and run: every error becomes one line on stderr
and a non-zero exit here, and nowhere else. `sitegen.cli` (all commands) and
`sitegen.alerts.cli` (alerts alone) both run through it, so neither imports the other.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from proxy import __version__
from proxy.errors import ConfigError
from proxy.resources import MissingResource

from .errors import SitegenError

#: Adds one subcommand (with `set_defaults(handler=...)`) to the parser.
AddCommand = Callable[[argparse._SubParsersAction], None]


def parser(commands: Sequence[AddCommand]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sitegen",
        description="Shin Gateway report generator.",
        epilog="example: python -m sitegen build --db litellm.db --out public",
    )
    p.add_argument("--version", action="version", version=f"shin-report {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in commands:
        add(sub)
    return p


def run(commands: Sequence[AddCommand], argv: Sequence[str] | None = None) -> int:
    args = parser(commands).parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"sitegen: config: {exc}", file=sys.stderr)
        return 2
    except SitegenError as exc:
        print(f"sitegen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except MissingResource as exc:
        print(f"sitegen: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sitegen: interrupted; the published site is unchanged", file=sys.stderr)
        return 130
