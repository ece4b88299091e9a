"""`python -m proxy.demo`: see proxy/demo/__init__.py; `make demo` then builds the site."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from ..errors import ConfigError, OperationError
from .run import DemoOptions, run_demo

EXAMPLES = """examples:
  python -m proxy.demo                         # demo/: 30 days of history + 300 live requests
  python -m proxy.demo --quick --dir /tmp/demo # seconds: 3 days, 600 rows, 40 requests (CI)
  python -m proxy.demo --db demo/big.db --rows 200000 --requests 1000
then:
  python -m sitegen build --db demo/litellm.db --out public --config demo/config.yaml
  make explore DB=demo/litellm.db
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m proxy.demo",
        description="Start the fake upstream and the real gateway, create virtual keys, write a month "
                    "of history and send live traffic; stops everything it started.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("demo"),
                        help="folder for config.yaml, keys.db, gateway.log (default demo/; rewritten)")
    parser.add_argument("--db", type=Path, help="request log to create (default <dir>/litellm.db)")
    parser.add_argument("--days", type=_positive, default=30, help="days of history (default 30)")
    parser.add_argument("--rows", type=_positive, default=20_000, help="history rows (default 20000)")
    parser.add_argument("--requests", type=_positive, default=300, help="live requests (default 300)")
    parser.add_argument("--concurrency", type=_positive, default=8, help="parallel live clients (default 8)")
    parser.add_argument("--quick", action="store_true", help="small numbers for CI: 3 days, 600 rows, 40 requests")
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the context manager stops the children.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.days, args.rows, args.requests = min(args.days, 3), min(args.rows, 600), min(args.requests, 40)
    options = DemoOptions(folder=args.dir, db=args.db, days=args.days, rows=args.rows,
                          requests=args.requests, concurrency=args.concurrency)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run_demo(options)
    except KeyboardInterrupt:
        print("demo interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    except (OperationError, ConfigError, RuntimeError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
