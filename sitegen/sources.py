"""What a build reads besides the log: keys.db for budgets, and the parts of config.yaml the
report uses (the gateway budget, the metadata keys to break down by)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sources:
    keys_db: Path | None = None  # None: no keys.db to read (the Cost page says so)
    gateway_max_budget: float | None = None  # litellm_settings.max_budget
    gateway_budget_duration: str | None = None  # litellm_settings.budget_duration
    breakdowns: tuple[str, ...] = ()  # report.breakdowns
    config: Path | None = None  # config.yaml: the Models page reads its model_list (no secrets)
    logs_rows: int = 2000  # report.logs_rows: requests (and errors) on the Logs page
