"""`python -m sitegen alerts`: check the thresholds of config.yaml's `alerts:` section once."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from proxy.config import config_path as find_config
from proxy.config import load_config

from .. import entry
from .check import AlertsFailed, parse_alerts, run_check, state_path_for

ALERTS_HELP = """\
Evaluate the alert rules of config.yaml's `alerts:` section against the request log (opened
read-only) and the gateway's /health, and notify the configured channels (stdout, Slack,
e-mail) of alerts that start, are still active after `repeat`, or resolve. What fired is kept
in a JSON file beside the database (default: litellm-alerts.json), never in the database.
Exit status: 0 checked (alerts may be firing), 1 a rule or channel failed, 2 bad config/database.

example config:
  alerts:
    gateway_url: http://localhost:4000
    repeat: 1h
    channels: [{type: stdout}, {type: email, to: [ops@example.com]}]
    rules:
      - {type: gateway_down}
      - {type: errors_last_hour, threshold: 100}
      - {type: error_rate, threshold: 5, lookback: 1h, min_requests: 20}
      - {type: daily_cost, threshold: 100}
      - {type: model_p95_latency, threshold: 10, lookback: 1h}

examples:
  python -m sitegen alerts --db litellm.db --config config.yaml
  python -m sitegen alerts --dry-run          # evaluate and print; notify nobody, save nothing
  */5 * * * * cd /srv/shin && .venv/bin/python -m sitegen alerts -q
"""


def _alerts(args: argparse.Namespace) -> int:
    config_path = find_config(args.config)
    config = load_config(config_path, only={"alerts": None, "report": None})
    alerts = parse_alerts(config)
    if alerts is None:
        if not args.quiet:
            print(f"alerts: no alerts section in {config_path or 'the config'}; nothing to check",
                  file=sys.stderr)
        return 0
    state_path = state_path_for(alerts, args.db, args.state)
    result = run_check(alerts, args.db, state_path, time.time(), dry_run=args.dry_run)
    if args.dry_run:
        for change in result.changes:
            print(f"would notify: {change.state} {change.ident}: {change.message}")
    if not args.quiet:
        resolved = sum(c.state == "RESOLVED" for c in result.changes)
        print(
            f"alerts: {result.rules} rule(s) checked, {len(result.firing)} firing, "
            f"{resolved} resolved, {len(result.changes)} notification(s)"
            + ("" if args.dry_run else f"; state {state_path}"),
            file=sys.stderr,
        )
    if result.problems:
        raise AlertsFailed("; ".join(result.problems))
    return 0


def add_alerts(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "alerts", help="check alert thresholds and notify", description=ALERTS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", type=Path, default=Path("litellm.db"),
                   help="request log database, opened read-only (default: litellm.db)")
    p.add_argument("--config", type=Path, default=None,
                   help="config.yaml with an alerts: section (default: ./config.yaml if present)")
    p.add_argument("--state", type=Path, default=None,
                   help="alert state file (default: alerts.state_file, else <db>-alerts.json)")
    p.add_argument("--dry-run", action="store_true", help="evaluate and print only")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    p.set_defaults(handler=_alerts)


def main(argv: Sequence[str] | None = None) -> int:
    """The same command through sitegen's one error-reporting entry point."""
    return entry.run([add_alerts], ["alerts", *(sys.argv[1:] if argv is None else argv)])
