"""Threshold alerts over the request log: `python -m sitegen alerts` (run by `make report`).

rules.py (the checks and their SQL), channels.py (stdout, Slack, e-mail), state.py (what fired,
kept between runs; `active_alerts()` for the report), check.py (one run), cli.py (the command).
"""

from .state import active_alerts, default_state_path

__all__ = ["active_alerts", "default_state_path"]
