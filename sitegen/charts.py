"""Vega-Lite chart specs (built with altair) for the report's tables.

Each chart draws the rows of one table, inlined into the spec: the page then needs no fetch()
(browsers refuse it from file://). Times in the log are UTC, so dates are parsed and shown as UTC
whatever the viewer's time zone. Specs are plain dicts; render.py embeds them escaped.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt

from .data import Table

HEIGHT = 220
DATE = "utc:'%Y-%m-%d'"
HOUR = "utc:'%Y-%m-%d %H:%M:%S'"


def _data(table: Table, parse: dict[str, str] | None = None) -> alt.Data:
    rows = [{k: v for k, v in row.items()} for row in table.rows]
    if parse:
        return alt.Data(values=rows, format=alt.DataFormat(parse=parse))
    return alt.Data(values=rows)


def _utc_x(field: str, title: str, unit: str = "utcyearmonthdate") -> alt.X:
    return alt.X(f"{field}:T", timeUnit=unit, title=title, scale=alt.Scale(type="utc"),
                 axis=alt.Axis(format="%b %d" if unit == "utcyearmonthdate" else "%H:%M",
                               labelOverlap=True))


def _base(table: Table, parse: dict[str, str] | None = None) -> alt.Chart:
    return alt.Chart(_data(table, parse)).properties(width="container", height=HEIGHT)


def daily_requests(table: Table) -> alt.TopLevelMixin:
    return _base(table, {"date": DATE}).mark_area(line=True, opacity=0.35).encode(
        x=_utc_x("date", "Day (UTC)"),
        y=alt.Y("requests:Q", title="Requests"),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("requests:Q", title="Requests", format=",")],
    )


def daily_cost(table: Table) -> alt.TopLevelMixin:
    return _base(table, {"date": DATE}).mark_bar().encode(
        x=_utc_x("date", "Day (UTC)"),
        y=alt.Y("daily_cost:Q", title="Cost (USD)", axis=alt.Axis(format="$,.2f")),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("daily_cost:Q", title="Cost", format="$,.4f"),
                 alt.Tooltip("requests:Q", title="Requests", format=",")],
    )


def _stacked_daily(table: Table, field: str, title: str, fmt: str) -> alt.TopLevelMixin:
    return _base(table, {"date": DATE}).mark_bar().encode(
        x=_utc_x("date", "Day (UTC)"),
        y=alt.Y(f"sum({field}):Q", title=title, axis=alt.Axis(format=fmt)),
        color=alt.Color("model:N", title="Model", sort="ascending"),
        order=alt.Order("model:N", sort="ascending"),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip(f"{field}:Q", title=title, format=fmt)],
    )


def daily_cost_by_model(table: Table) -> alt.TopLevelMixin:
    return _stacked_daily(table, "cost", "Cost (USD)", "$,.2f")


def daily_tokens(table: Table) -> alt.TopLevelMixin:
    return _stacked_daily(table, "total_tokens", "Tokens", "~s")


def _horizontal_bars(table: Table, field: str, label: str, title: str, fmt: str,
                     nulls: str = "(none)") -> alt.TopLevelMixin:
    chart = alt.Chart(_data(table)).transform_calculate(
        label=f"datum.{label} == null ? '{nulls}' : datum.{label}"
    )
    return chart.mark_bar().encode(
        y=alt.Y("label:N", title=None, sort=alt.EncodingSortField(field, order="descending")),
        x=alt.X(f"{field}:Q", title=title, axis=alt.Axis(format=fmt)),
        tooltip=[alt.Tooltip("label:N", title="Name"),
                 alt.Tooltip(f"{field}:Q", title=title, format=fmt)],
    ).properties(width="container", height=max(60, 24 * len(table.rows)))


def cost_by_model(table: Table) -> alt.TopLevelMixin:
    return _horizontal_bars(table, "total_cost", "model", "Cost (USD)", "$,.2f")


def cost_by_user(table: Table) -> alt.TopLevelMixin:
    return _horizontal_bars(table, "total_cost", "user_id", "Cost (USD)", "$,.2f")


def requests_by_model(table: Table) -> alt.TopLevelMixin:
    return _horizontal_bars(table, "requests", "model", "Requests", ",")


def error_rates(table: Table) -> alt.TopLevelMixin:
    return _horizontal_bars(table, "error_rate", "model", "Error rate (%)", ".2f")


def latency_percentiles(table: Table) -> alt.TopLevelMixin:
    # One small chart per model, p50/p95/p99 as separate lines on a shared time axis.
    base = alt.Chart(_data(table, {"date": DATE})).transform_fold(
        ["p50", "p95", "p99"], as_=["percentile", "seconds"]
    )
    lines = base.mark_line(point=True).encode(
        x=_utc_x("date", "Day (UTC)"),
        y=alt.Y("seconds:Q", title="Latency (s)"),
        color=alt.Color("percentile:N", title="Percentile", sort=["p50", "p95", "p99"]),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("percentile:N", title="Percentile"),
                 alt.Tooltip("seconds:Q", title="Seconds", format=".3f")],
    ).properties(width=280, height=160)
    return lines.facet(
        facet=alt.Facet("model:N", title=None, sort="ascending"), columns=2
    ).resolve_scale(y="independent")


def hourly_throughput(table: Table) -> alt.TopLevelMixin:
    base = _base(table, {"hour": HOUR}).transform_fold(
        ["requests_per_hour", "errors"], as_=["series", "count"]
    ).transform_calculate(
        series="datum.series == 'errors' ? 'Errors' : 'Requests'"
    )
    return base.mark_line(point=True).encode(
        x=_utc_x("hour", "Hour (UTC)", "utcyearmonthdatehours"),
        y=alt.Y("count:Q", title="Per hour"),
        color=alt.Color("series:N", title=None, sort=["Requests", "Errors"]),
        tooltip=[alt.Tooltip("hour:T", title="Hour", timeUnit="utcyearmonthdatehours",
                             format="%Y-%m-%d %H:00"),
                 alt.Tooltip("series:N", title="Series"),
                 alt.Tooltip("count:Q", title="Count", format=",")],
    )


def request_volume_by_hour(table: Table) -> alt.TopLevelMixin:
    return _base(table).mark_bar().encode(
        x=alt.X("hour:O", title="Hour of day (UTC)"),
        y=alt.Y("requests:Q", title="Requests"),
        tooltip=[alt.Tooltip("hour:O", title="Hour"),
                 alt.Tooltip("requests:Q", title="Requests", format=",")],
    )


def status_codes(table: Table) -> alt.TopLevelMixin:
    return _base(table, {"date": DATE}).transform_filter(
        "datum.status_code >= 400"
    ).mark_bar().encode(
        x=_utc_x("date", "Day (UTC)"),
        y=alt.Y("sum(requests):Q", title="Failed requests"),
        color=alt.Color("status_code:N", title="Status", sort="ascending"),
        order=alt.Order("status_code:N", sort="ascending"),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("status_code:N", title="Status"),
                 alt.Tooltip("requests:Q", title="Requests", format=",")],
    )


BUILDERS: dict[str, Callable[[Table], alt.TopLevelMixin]] = {
    "daily_requests": daily_requests,
    "daily_cost": daily_cost,
    "daily_cost_by_model": daily_cost_by_model,
    "daily_tokens": daily_tokens,
    "cost_by_model": cost_by_model,
    "cost_by_user": cost_by_user,
    "requests_by_model": requests_by_model,
    "error_rates": error_rates,
    "latency_percentiles": latency_percentiles,
    "hourly_throughput": hourly_throughput,
    "request_volume_by_hour": request_volume_by_hour,
    "status_codes": status_codes,
}


def chart_spec(name: str, table: Table) -> dict[str, object]:
    """The Vega-Lite spec of chart `name` drawing `table`'s rows."""
    chart = BUILDERS[name](table)
    spec = chart.to_dict()
    # The page's CSS decides the background, so light and dark themes both read well.
    spec.setdefault("config", {})["background"] = "transparent"
    return spec
