"""Month-to-date cost and where the month ends at the current rate (UTC calendar month).

    rate      = cost from 00:00 seven days ago to now / the days in between (7 and a part)
    projected = month-to-date cost + rate * the days left in the month

The rate looks at the last week rather than the month so far: a month that started slow and
got busy (or the other way) projects from how it runs now. Daily totals come from the shared
scan in series.py; no query of its own.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import series

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

RATE_DAYS = 7


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return start + timedelta(days=monthrange(start.year, start.month)[1])


def rate_per_day(reader: Reader) -> float:
    """Average cost per day from 00:00 RATE_DAYS days ago to now."""
    now = reader.clock.now
    since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=RATE_DAYS)
    days = [b for b in series.daily(reader, 0) if b.start >= since]
    elapsed = (now - since).total_seconds() / 86400
    return sum(b.cost for b in days) / elapsed


def extent_first(reader: Reader) -> str:
    """The log's first timestamp ('' when empty): a month before it was not recorded."""
    return str(reader.extent().get("first") or "")


def _forecast(reader: Reader) -> dict[str, object]:
    def run() -> dict[str, object]:
        now = reader.clock.now
        start = _month_start(now)
        end = _next_month(start)
        previous_start = _month_start(start - timedelta(days=1))
        buckets = series.daily(reader, 0)
        mtd = sum(b.cost for b in buckets if b.start >= start)
        previous = [b for b in buckets if previous_start <= b.start < start]
        rate = rate_per_day(reader)
        days_left = (end - now).total_seconds() / 86400
        projected = mtd + rate * days_left
        # Last month counts only when the scan and the log cover all of it.
        first = next((b for b in buckets if b.requests), None)
        complete = first is not None and buckets[0].start <= previous_start and (
            first.start <= previous_start or extent_first(reader) <= reader.stamp(previous_start))
        previous_cost = sum(b.cost for b in previous) if complete else None
        return {
            "month": start.strftime("%Y-%m"),
            "month_to_date": round(mtd, 6),
            "days_elapsed": round((now - start).total_seconds() / 86400, 2),
            "days_in_month": (end - start).days,
            "rate_per_day": round(rate, 6),
            "projected": round(projected, 6),
            "previous_month": round(previous_cost, 6) if previous_cost is not None else None,
            "projected_change": (round(100 * (projected - previous_cost) / previous_cost, 1)
                                 if previous_cost else None),
            "daily": [(b.label, b.cost) for b in buckets if b.start >= start],
            "end": end,
        }

    return reader.memo("forecast", run)  # type: ignore[no-any-return]


def month_forecast_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """One row: this month so far, the rate, the projection and last month for comparison."""
    return [{k: v for k, v in _forecast(reader).items() if k not in ("daily", "end")}]


def month_to_date_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Every day of the month: actual cost and running total so far, then the projection."""
    f = _forecast(reader)
    rate, end = float(f["rate_per_day"]), f["end"]  # type: ignore[arg-type]
    rows: list[dict[str, object]] = []
    total = 0.0
    for label, cost in f["daily"]:  # type: ignore[attr-defined]
        total += cost
        rows.append({"date": label, "cost": round(cost, 6), "cumulative": round(total, 6),
                     "projected": None})
    if rows:
        rows[-1]["projected"] = rows[-1]["cumulative"]  # the projection starts where we are
    now = reader.clock.now
    day = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    while day < end:  # type: ignore[operator]
        # Each future day ends at its next midnight: the projected running total there.
        ahead = (day + timedelta(days=1) - now).total_seconds() / 86400
        rows.append({"date": day.strftime("%Y-%m-%d"), "cost": None, "cumulative": None,
                     "projected": round(total + rate * ahead, 6)})
        day += timedelta(days=1)
    return rows


def summary(rows: list[dict[str, object]]) -> str:
    """One sentence for the Cost page."""
    if not rows:
        return ""
    r = rows[0]

    def usd(key: str) -> str:
        value = r[key]
        return f"${float(value):,.2f}" if isinstance(value, (int, float)) else "—"

    text = (f"{r['month']} so far: {usd('month_to_date')} in {float(r['days_elapsed']):.1f} days; "  # type: ignore[arg-type]
            f"at the current {usd('rate_per_day')} a day the month ends near {usd('projected')}")
    if isinstance(r["previous_month"], (int, float)):
        text += f", against {usd('previous_month')} last month"
    return text + "."
