"""`python -m proxy` / `shin-proxy`: the command line. Named errors become one-line messages here."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable

from . import __version__
from .errors import ConfigError, OperationError
from .ops.commands import positive_int

EPILOG = """examples:
  shin-proxy serve --config config.yaml --port 4000
  shin-proxy serve --config config.yaml --host 0.0.0.0 --port 4000 --db /var/lib/shin/litellm.db
  python -m proxy serve --config config.yaml --log-file -     # log to stderr only
  shin-proxy serve --config config.yaml --port 4000 --workers 4   # 4 processes, one port
"""

#: Subcommands register here: name -> (add_arguments, run). Other modules (keys, backup,
#: prune) add themselves in `_commands()` so this file stays the single place errors are shown.
Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _add_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="config.yaml (LiteLLM format); default: none, an empty gateway")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4000, help="port (default 4000; 0 picks a free one)")
    parser.add_argument("--db", help="request log SQLite file (default general_settings.database_path)")
    parser.add_argument("--keys-db", help="virtual keys SQLite file (default keys.db beside --db)")
    parser.add_argument("--log-file", help="gateway log file ('-' for stderr only; default from config)")
    parser.add_argument(
        "--workers", "--num_workers", type=positive_int, metavar="N", default=os.environ.get("NUM_WORKERS", "1"),
        help="gateway processes on the one port, supervised by this one (default 1, or $NUM_WORKERS "
             "as LiteLLM reads it; 1 runs no extra process; docs/operations.md)",
    )
    parser.add_argument(
        "--listen-mode", choices=("reuseport", "shared"), default="reuseport",
        help="with --workers: each worker listens with SO_REUSEPORT (default), or all accept "
             "on the supervisor's one socket",
    )


def _run_serve(args: argparse.Namespace) -> int:
    """Run the gateway (stops cleanly on SIGTERM/SIGINT, flushing the request log)."""
    if args.workers > 1:
        from .workers.supervisor import serve_workers

        return serve_workers(args, args.workers, args.listen_mode)
    from .config import load_config
    from .logsetup import configure_logging, held_logs
    from .server.app import create_app
    from .server.shutdown import serve

    log_file = None if args.log_file is None else ("" if args.log_file == "-" else args.log_file)
    with held_logs("proxy.config"):  # its warnings reach gateway.log once that is set up
        config = load_config(args.config)
        configure_logging(config.general, config.litellm, log_file=log_file)
    app = create_app(config, db_path=args.db, keys_db_path=args.keys_db)
    logging.getLogger("proxy").info("Shin Gateway %s on http://%s:%d", __version__, args.host, args.port)
    # SIGTERM/SIGINT: stop accepting, give in-flight requests shutdown_grace, cancel the rest
    # (logged so), flush or spill the request log, exit 0 (proxy/server/shutdown.py).
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(app, args.host, args.port, config.general.shutdown_grace))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional off Linux/macOS
        return None
    return uvloop.new_event_loop


def _add_settings(parser: argparse.ArgumentParser) -> None:
    pass


def _run_settings(args: argparse.Namespace) -> int:
    """List every config.yaml setting with its default and help."""
    from .settings import describe

    print(describe(), end="")
    return 0


def _run_example_config(args: argparse.Namespace) -> int:
    """Print the commented example config.yaml (`shin-proxy example-config > config.yaml`)."""
    from .resources import example_config

    print(example_config(), end="")
    return 0


def _commands() -> dict[str, Command]:
    commands: dict[str, Command] = {"serve": (_add_serve, _run_serve), "settings": (_add_settings, _run_settings),
                                    "example-config": (_add_settings, _run_example_config)}
    from .ops.commands import BACKUP, MERGE, MIGRATE, PRUNE

    commands["backup"] = BACKUP
    commands["prune"] = PRUNE
    commands["merge"] = MERGE
    commands["migrate"] = MIGRATE
    from .admin.cli import KEYS, TEAMS, USERS

    commands["keys"] = KEYS
    commands["users"] = USERS
    commands["teams"] = TEAMS
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shin-proxy",
        description="Shin Gateway: an OpenAI-compatible LLM gateway that logs every request to SQLite.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, run) in _commands().items():
        child = sub.add_parser(name, help=(run.__doc__ or "").strip().splitlines()[0] if run.__doc__ else None,
                               epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(child)
        child.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"shin-proxy: config error: {exc}", file=sys.stderr)
        return 2
    except OperationError as exc:
        print(f"shin-proxy: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"shin-proxy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
