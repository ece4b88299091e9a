"""The catalogue's windowed tables computed from sitegen/aggregates.py on a log with rollups.

Each function returns the rows its table's SQL (sitegen/queries.py) returns over the raw rows,
same columns, order and rounding; counts and sums are equal (sums of costs up to floating
point), percentiles within one histogram bucket. The SQL stays the table's definition: it is
what the Datasette links run, and what a log without rollups is read with.

Exact times (an error type's last occurrence, an unpriced model's first and last request) come
from the raw rows of the one hour the aggregates point at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import health, spend
from .base import Rows

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

#: Table name -> its rows from the aggregates (tables not named here read their SQL as before).
TABLES: dict[str, Callable[[Reader, TableDef, dict[str, str]], Rows]] = {
    f.__name__: f for f in (
        spend.todays_stats, spend.todays_top_models, spend.top_models, spend.daily_cost_trend,
        spend.daily_cost_by_model, spend.cost_by_model, spend.top_users_by_cost,
        spend.cost_by_key, spend.cost_by_team, spend.usage_by_model, spend.usage_by_user,
        spend.usage_by_key, spend.daily_tokens_by_model, spend.token_efficiency,
        health.latency_by_model, health.latency_percentiles, health.daily_latency_percentiles,
        health.ttft_by_model, health.stream_speed, health.daily_stream_speed,
        health.hourly_throughput, health.request_volume_by_hour, health.error_rates,
        health.status_codes_daily, health.error_types, health.cost_status_summary,
        health.unpriced_models, health.estimated_tokens, health.zero_cost_models,
    )
}
