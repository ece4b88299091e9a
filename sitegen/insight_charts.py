"""Charts of the analyses: the cost waterfall, daily health with thresholds, the month's
projection, streaming speed, the gateway's overhead and the breakdowns' daily cost.

Same rules as charts.py: data inlined, UTC throughout, every chart has tooltips and every
legend highlights the series clicked. Where a chart needs a shape its table does not have
(the waterfall's floating bars), the rows are reshaped here, deterministically.
"""

from __future__ import annotations

import altair as alt

from .analysis.decomposition import PERIODS
from .charts import (
    DATE,
    HEIGHT,
    Builder,
    Table,
    Tables,
    highlight,
    responsive_facet,
    stacked_daily,
    utc_x,
)

RED, GREEN, GREY = "#d62728", "#2ca02c", "#7f7f7f"
DAY_TIP = alt.Tooltip("date:T", title="Day", timeUnit="utcyearmonthdate", format="%Y-%m-%d")


def _values(rows: list[dict[str, object]], parse: dict[str, str] | None = None) -> alt.Data:
    if parse:
        return alt.Data(values=rows, format=alt.DataFormat(parse=parse))
    return alt.Data(values=rows)


def waterfall_rows(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per period: before, volume, mix, price as floating steps, then now."""
    out: list[dict[str, object]] = []
    for label, compared, _, _ in PERIODS:
        total = next((r for r in rows if r["period"] == label and r["level"] == "total"), None)
        if total is None:
            continue
        level = float(total["previous_cost"])  # type: ignore[arg-type]
        out.append({"period": label, "order": 0, "step": "Before", "start": 0.0, "end": level,
                    "amount": level, "kind": "total", "note": compared})
        for order, step in enumerate(("volume", "mix", "price"), 1):
            amount = float(total[step])  # type: ignore[arg-type]
            out.append({"period": label, "order": order, "step": step.capitalize(),
                        "start": level, "end": level + amount, "amount": amount,
                        "kind": "increase" if amount > 0 else "decrease" if amount < 0 else "total",
                        "note": f"{step} effect"})
            level += amount
        now = float(total["cost"])  # type: ignore[arg-type]
        out.append({"period": label, "order": 4, "step": "Now", "start": 0.0, "end": now,
                    "amount": now, "kind": "total", "note": label.lower()})
    return out


def cost_waterfall(table: Table, tables: Tables) -> alt.TopLevelMixin:
    rows = waterfall_rows(table.rows)
    big = any(abs(float(r["amount"])) >= 1 for r in rows)  # type: ignore[arg-type]
    money = "$,.2f" if big else "$,.4f"
    period = alt.param(name="period", value="Last 7 days", bind=alt.binding_radio(
        options=[p[0] for p in PERIODS], name="Compare: "))
    base = alt.Chart(_values(rows)).add_params(period).transform_filter(
        "datum.period == period")
    x = alt.X("step:N", title=None, sort=["Before", "Volume", "Mix", "Price", "Now"],
              axis=alt.Axis(labelAngle=0))
    tips = [alt.Tooltip("period:N", title="Period"), alt.Tooltip("step:N", title="Step"),
            alt.Tooltip("amount:Q", title="Amount", format="+" + money),
            alt.Tooltip("start:Q", title="From", format=money),
            alt.Tooltip("end:Q", title="To", format=money),
            alt.Tooltip("note:N", title="Compared with")]
    bars = base.mark_bar().encode(
        x=x, y=alt.Y("start:Q", title="Cost (USD)", axis=alt.Axis(format="$,.2f")), y2="end:Q",
        color=alt.Color("kind:N", title="Step", scale=alt.Scale(
            domain=["total", "increase", "decrease"], range=[GREY, RED, GREEN]),
            legend=alt.Legend(orient="bottom")),
        tooltip=tips,
    )
    labels = base.transform_calculate(top="max(datum.start, datum.end)").mark_text(
        dy=-6, baseline="bottom").encode(
        x=x, y="top:Q", text=alt.Text("amount:Q", format=money), tooltip=tips)
    return alt.layer(highlight(bars, "kind", "pick"), labels).properties(
        width="container", height=HEIGHT)


def daily_health(table: Table, tables: Tables) -> alt.TopLevelMixin:
    rows = [{**r, "shown": _shown(r["value"], r["unit"]),
             "limit": _shown(r["threshold"], r["unit"])} for r in table.rows]
    order = ["Cost", "Error rate", "p95 latency"]
    x = utc_x("date", "Day (UTC)")
    tips = [DAY_TIP, alt.Tooltip("metric:N", title="Metric"),
            alt.Tooltip("shown:N", title="Value"), alt.Tooltip("limit:N", title="Threshold")]
    base = alt.Chart().encode(x=x)
    fold = base.transform_fold(["value", "threshold"], as_=["series", "y"]).transform_calculate(
        series="datum.series == 'value' ? 'Value' : 'Threshold (median + 5 MAD)'")
    lines = highlight(fold.mark_line().encode(
        y=alt.Y("y:Q", title=None, axis=alt.Axis(format="~s")),
        color=alt.Color("series:N", title=None, scale=alt.Scale(
            domain=["Value", "Threshold (median + 5 MAD)"], range=["#1f77b4", GREY]),
                        legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDashValue([4, 3], condition={"test": "datum.series == 'Value'", "value": [1, 0]}),
        tooltip=tips), "series", "pick")
    flagged = base.transform_filter("datum.anomaly == 1").mark_point(
        color=RED, filled=True, size=70).encode(y="value:Q", tooltip=tips)
    layered = alt.layer(lines, flagged, data=_values(rows, {"date": DATE})).properties(
        width=300, height=150)
    chart = layered.facet(facet=alt.Facet("metric:N", title=None, sort=order), columns=3)
    return responsive_facet(chart.resolve_scale(y="independent"), 260)


def _shown(value: object, unit: object) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    if unit == "usd":
        return f"${value:,.2f}" if abs(value) >= 1 else f"${value:,.4f}"
    if unit == "pct":
        return f"{value:.2f}%"
    return f"{value:.3f} s"


def month_to_date(table: Table, tables: Tables) -> alt.TopLevelMixin:
    base = alt.Chart(_values(table.rows, {"date": DATE})).transform_fold(
        ["cumulative", "projected"], as_=["series", "usd"]).transform_filter(
        "datum.usd != null").transform_calculate(
        series="datum.series == 'cumulative' ? 'So far' : 'Projected'")
    chart = base.mark_line(point=True).encode(
        x=utc_x("date", "Day (UTC)"),
        y=alt.Y("usd:Q", title="Cost this month (USD)", axis=alt.Axis(format="$,.2f")),
        color=alt.Color("series:N", title=None, sort=["So far", "Projected"],
                        legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDashValue([1, 0], condition={"test": "datum.series == 'Projected'", "value": [5, 4]}),
        tooltip=[DAY_TIP, alt.Tooltip("series:N", title="Series"),
                 alt.Tooltip("usd:Q", title="Running total", format="$,.2f"),
                 alt.Tooltip("cost:Q", title="That day", format="$,.4f")],
    )
    return highlight(chart, "series", "pick").properties(width="container", height=HEIGHT)


def stream_speed(table: Table, tables: Tables) -> alt.TopLevelMixin:
    chart = alt.Chart(_values(table.rows, {"date": DATE})).mark_line(point=True).encode(
        x=utc_x("date", "Day (UTC)"),
        y=alt.Y("tps_p50:Q", title="Output tokens/s (p50)"),
        color=alt.Color("model:N", title="Model", sort="ascending",
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=180)),
        tooltip=[DAY_TIP, alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("streams:Q", title="Streams", format=","),
                 alt.Tooltip("tps_p50:Q", title="Tokens/s p50", format=",.1f"),
                 alt.Tooltip("tps_p95:Q", title="Tokens/s p95 (slow)", format=",.1f"),
                 alt.Tooltip("ttft_p50:Q", title="First token p50 (s)", format=".3f")],
    )
    return highlight(chart, "model", "pick").properties(width="container", height=HEIGHT)


def gateway_overhead(table: Table, tables: Tables) -> alt.TopLevelMixin:
    base = alt.Chart(_values(table.rows, {"date": DATE})).transform_fold(
        ["overhead_p50", "overhead_p99"], as_=["series", "seconds"]).transform_calculate(
        ms="datum.seconds * 1000",
        series="datum.series == 'overhead_p50' ? 'p50' : 'p99'")
    chart = base.mark_line(point=True).encode(
        x=utc_x("date", "Day (UTC)"),
        y=alt.Y("ms:Q", title="Added by the gateway (ms)"),
        color=alt.Color("series:N", title="Percentile", sort=["p50", "p99"],
                        legend=alt.Legend(orient="top")),
        tooltip=[DAY_TIP, alt.Tooltip("series:N", title="Percentile"),
                 alt.Tooltip("ms:Q", title="Gateway (ms)", format=",.2f"),
                 alt.Tooltip("latency_p95:Q", title="Request p95 (s)", format=".3f")],
    )
    return highlight(chart, "series", "pick").properties(width="container", height=HEIGHT)


def breakdown_daily(table: Table, tables: Tables) -> alt.TopLevelMixin:
    rows = [{**r, "value": "(not set)" if r["value"] is None else r["value"]} for r in table.rows]
    shaped = Table(table.spec, rows, table.start, table.end)
    return stacked_daily(shaped, "cost", "Cost (USD)", "$,.2f", "value",
                          str(table.spec.params.get("key", "Value")))


BUILDERS: dict[str, Builder] = {
    "cost_waterfall": cost_waterfall,
    "daily_health": daily_health,
    "month_to_date": month_to_date,
    "stream_speed": stream_speed,
    "gateway_overhead": gateway_overhead,
}


def builder(name: str) -> Builder:
    """The builder of a chart of this module; breakdowns' charts are named by_<key>_daily."""
    if name in BUILDERS:
        return BUILDERS[name]
    if name.startswith("by_") and name.endswith("_daily"):
        return breakdown_daily
    raise KeyError(f"no chart named {name!r}")
