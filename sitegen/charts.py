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


def utc_x(field: str, title: str, unit: str = "utcyearmonthdate") -> alt.X:
    return alt.X(f"{field}:T", timeUnit=unit, title=title, scale=alt.Scale(type="utc"),
                 axis=alt.Axis(format="%b %d" if unit == "utcyearmonthdate" else "%H:%M",
                               labelOverlap=True))


def _base(table: Table, parse: dict[str, str] | None = None) -> alt.Chart:
    return alt.Chart(_data(table, parse)).properties(width="container", height=HEIGHT)


Tables = dict[str, Table]


def highlight(chart: alt.Chart, field: str, name: str) -> alt.Chart:
    """Clicking a legend entry highlights that series (shift-click adds one, a click elsewhere
    in the legend clears). Named, so a spec is the same however many charts a process builds."""
    pick = alt.selection_point(fields=[field], bind="legend", name=name)
    # The channel object, not alt.condition's dict: Altair would look the dict up against every
    # definition in the Vega-Lite schema (a sixth of a second per process) to find this class.
    return chart.add_params(pick).encode(
        opacity=alt.OpacityValue(0.15, condition={"param": name, "value": 1.0}))


def anomaly_rules(tables: Tables, metric: str, grain: str, x: alt.X) -> alt.Chart | None:
    """Red rules on the days or hours the anomalies table flags for `metric`, or None."""
    found = tables.get("anomalies")
    rows = [r for r in (found.rows if found else []) if r["metric"] == metric and r["grain"] == grain]
    if not rows:
        return None
    parse = DATE if grain == "day" else HOUR
    data = alt.Data(values=[{"when": r["when"], "value": r["value"], "threshold": r["threshold"],
                             "metric": metric} for r in rows],
                    format=alt.DataFormat(parse={"when": parse}))
    unit = "utcyearmonthdate" if grain == "day" else "utcyearmonthdatehours"
    return alt.Chart(data).mark_rule(color="#d62728", strokeDash=[4, 3], size=2).encode(
        x=x,
        tooltip=[alt.Tooltip("when:T", title="Anomaly", timeUnit=unit,
                             format="%Y-%m-%d" if grain == "day" else "%Y-%m-%d %H:00"),
                 alt.Tooltip("metric:N", title="Metric"),
                 alt.Tooltip("value:Q", title="Value", format=",.4~f"),
                 alt.Tooltip("threshold:Q", title="Threshold", format=",.4~f")],
    )


def _marked(chart: alt.Chart, rules: alt.Chart | None) -> alt.TopLevelMixin:
    if rules is None:
        return chart
    return alt.layer(chart, rules).properties(width="container", height=HEIGHT)


def daily_requests(table: Table) -> alt.TopLevelMixin:
    return _base(table, {"date": DATE}).mark_area(line=True, opacity=0.35).encode(
        x=utc_x("date", "Day (UTC)"),
        y=alt.Y("requests:Q", title="Requests"),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("requests:Q", title="Requests", format=",")],
    )


def daily_cost(table: Table, tables: Tables) -> alt.TopLevelMixin:
    bars = _base(table, {"date": DATE}).mark_bar().encode(
        x=utc_x("date", "Day (UTC)"),
        y=alt.Y("daily_cost:Q", title="Cost (USD)", axis=alt.Axis(format="$,.2f")),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("daily_cost:Q", title="Cost", format="$,.4f"),
                 alt.Tooltip("requests:Q", title="Requests", format=",")],
    )
    rules = anomaly_rules(tables, "Cost", "day", alt.X("when:T", timeUnit="utcyearmonthdate",
                                                       bandPosition=0.5))
    return _marked(bars, rules)


def stacked_daily(table: Table, field: str, title: str, fmt: str,
                   series: str = "model", series_title: str = "Model") -> alt.TopLevelMixin:
    chart = _base(table, {"date": DATE}).mark_bar().encode(
        x=utc_x("date", "Day (UTC)"),
        y=alt.Y(f"sum({field}):Q", title=title, axis=alt.Axis(format=fmt)),
        color=alt.Color(f"{series}:N", title=series_title, sort="ascending",
                        legend=alt.Legend(orient="bottom", columns=3, labelLimit=160)),
        order=alt.Order(f"{series}:N", sort="ascending"),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip(f"{series}:N", title=series_title),
                 alt.Tooltip(f"{field}:Q", title=title, format=fmt)],
    )
    return highlight(chart, series, "pick")


def daily_cost_by_model(table: Table) -> alt.TopLevelMixin:
    return stacked_daily(table, "cost", "Cost (USD)", "$,.2f")


def daily_tokens(table: Table) -> alt.TopLevelMixin:
    return stacked_daily(table, "total_tokens", "Tokens", "~s")


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
        x=utc_x("date", "Day (UTC)"),
        y=alt.Y("seconds:Q", title="Latency (s)"),
        color=alt.Color("percentile:N", title="Percentile", sort=["p50", "p95", "p99"],
                        legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("percentile:N", title="Percentile"),
                 alt.Tooltip("seconds:Q", title="Seconds", format=".3f")],
    ).properties(width=280, height=160)
    return responsive_facet(highlight(lines, "percentile", "pick").facet(
        facet=alt.Facet("model:N", title=None, sort="ascending"), columns=2
    ).resolve_scale(y="independent"), 240)


def responsive_facet(chart: alt.TopLevelMixin, min_width: int) -> alt.TopLevelMixin:
    """Facets have a fixed cell width; site.js sets it, and the number of columns, from the
    width the page gives the chart (usermeta), so small multiples wrap on a phone."""
    return chart.properties(usermeta={"shin": {"facet_min_width": min_width}})


def hourly_throughput(table: Table, tables: Tables) -> alt.TopLevelMixin:
    base = _base(table, {"hour": HOUR}).transform_fold(
        ["requests_per_hour", "errors"], as_=["series", "count"]
    ).transform_calculate(
        series="datum.series == 'errors' ? 'Errors' : 'Requests'"
    )
    lines = highlight(base.mark_line(point=True).encode(
        x=utc_x("hour", "Hour (UTC)", "utcyearmonthdatehours"),
        y=alt.Y("count:Q", title="Per hour"),
        color=alt.Color("series:N", title=None, sort=["Requests", "Errors"]),
        tooltip=[alt.Tooltip("hour:T", title="Hour", timeUnit="utcyearmonthdatehours",
                             format="%Y-%m-%d %H:00"),
                 alt.Tooltip("series:N", title="Series"),
                 alt.Tooltip("count:Q", title="Count", format=",")],
    ), "series", "pick")
    found = tables.get("anomalies")
    hours = {str(r["when"]) for r in (found.rows if found else []) if r["grain"] == "hour"}
    if not hours:
        return lines
    marks = alt.Data(values=[{"when": h, "metrics": ", ".join(
        str(r["metric"]) for r in found.rows if r["grain"] == "hour" and r["when"] == h)}  # type: ignore[union-attr]
        for h in sorted(hours)], format=alt.DataFormat(parse={"when": HOUR}))
    rules = alt.Chart(marks).mark_rule(color="#d62728", strokeDash=[4, 3], size=2).encode(
        x=alt.X("when:T", timeUnit="utcyearmonthdatehours"),
        tooltip=[alt.Tooltip("when:T", title="Anomalous hour", timeUnit="utcyearmonthdatehours",
                             format="%Y-%m-%d %H:00"),
                 alt.Tooltip("metrics:N", title="Metrics")],
    )
    return _marked(lines, rules)


def request_volume_by_hour(table: Table) -> alt.TopLevelMixin:
    return _base(table).mark_bar().encode(
        x=alt.X("hour:O", title="Hour of day (UTC)"),
        y=alt.Y("requests:Q", title="Requests"),
        tooltip=[alt.Tooltip("hour:O", title="Hour"),
                 alt.Tooltip("requests:Q", title="Requests", format=",")],
    )


def status_codes(table: Table, tables: Tables) -> alt.TopLevelMixin:
    bars = highlight(_base(table, {"date": DATE}).transform_filter(
        "datum.status_code >= 400"
    ).mark_bar().encode(
        x=utc_x("date", "Day (UTC)"),
        y=alt.Y("sum(requests):Q", title="Failed requests"),
        color=alt.Color("status_code:N", title="Status", sort="ascending"),
        order=alt.Order("status_code:N", sort="ascending"),
        tooltip=[alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d"),
                 alt.Tooltip("status_code:N", title="Status"),
                 alt.Tooltip("requests:Q", title="Requests", format=",")],
    ), "status_code", "pick")
    rules = anomaly_rules(tables, "Error rate", "day", alt.X("when:T", timeUnit="utcyearmonthdate",
                                                             bandPosition=0.5))
    return _marked(bars, rules)


def _plain(builder: Callable[[Table], alt.TopLevelMixin]) -> Builder:
    return lambda table, tables: builder(table)


Builder = Callable[[Table, Tables], alt.TopLevelMixin]
BUILDERS: dict[str, Builder] = {
    "daily_requests": _plain(daily_requests),
    "daily_cost": daily_cost,
    "daily_cost_by_model": _plain(daily_cost_by_model),
    "daily_tokens": _plain(daily_tokens),
    "cost_by_model": _plain(cost_by_model),
    "cost_by_user": _plain(cost_by_user),
    "requests_by_model": _plain(requests_by_model),
    "error_rates": _plain(error_rates),
    "latency_percentiles": _plain(latency_percentiles),
    "hourly_throughput": hourly_throughput,
    "request_volume_by_hour": _plain(request_volume_by_hour),
    "status_codes": status_codes,
}


def chart_spec(name: str, table: Table, tables: Tables | None = None, *,
               validate: bool = False) -> dict[str, object]:
    """The Vega-Lite spec of chart `name` drawing `table`'s rows (others for marks on it).

    Not validated against the Vega-Lite schema by default (neither the objects as built nor the
    whole spec): that is half the charts' build time, and the specs depend on the code, not on
    the data; the tests validate every one."""
    from . import insight_charts  # builds on this module's helpers, so imported late

    builder = BUILDERS.get(name) or insight_charts.builder(name)
    # Altair also validates each schema object as it is constructed (its debug mode, on by
    # default): the same third again, so off unless validation is asked for.
    with alt.utils.schemapi.debug_mode(validate):
        spec = builder(table, tables or {}).to_dict(validate=validate)
    # The page's CSS decides the background, so light and dark themes both read well.
    spec.setdefault("config", {})["background"] = "transparent"
    return spec
