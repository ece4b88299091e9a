"""Requests, tokens, cost, errors and p95 latency by the metadata keys `report.breakdowns` names.

The gateway stores each request's metadata as JSON (proxy/accounting/tags.py: the body's
`metadata`, with every tag under `tags`). A key's value is read at `$."key"`; a list (tags)
counts the request once under each item; a missing key counts as "(not set)".

One scan reads every configured key at once: json_extract with one path per key returns the
request's values as one JSON array (its "combination"), and the scan groups by day and
combination, a few thousand groups however many requests. Python then adds the combinations up
per key and value. p95 latency cannot be added up that way: it comes from the last 7 days'
latencies (requests that reached an upstream, the report's one rule) read in order once.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .aggregates import Bins, merge_bins, value_at
from .analysis.robust import rank
from .catalogue import Column, Page, Section, TableDef, Window
from .views import breakdown_views

if TYPE_CHECKING:
    from .data import Reader

TOP_VALUES = 50  # rows per key in the totals; the rest are folded into one "other" row
CHART_VALUES = 8  # series in the daily chart; the rest are "(other)"
LATENCY_DAYS = 7

#: {paths} is one :pN placeholder per key (at least two, so the result is always an array).
_COMBO = "json_extract(CASE WHEN json_valid(metadata) THEN metadata END, {paths})"

#: One day's requests by combination (run per day: sorting a day at a time is cheaper).
BREAKDOWN_DAY = """
SELECT """ + _COMBO + """ AS combo,
       COUNT(*) AS requests,
       SUM(total_tokens) AS tokens,
       SUM(cost) AS cost,
       SUM(status_code >= 400) AS errors
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY combo
"""

#: {reached}: `upstream_latency IS NOT NULL`, or `1` on a log without that column.
BREAKDOWN_LATENCIES = """
SELECT """ + _COMBO + """ AS combo, latency
FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND {reached}
ORDER BY latency
"""

#: Which metadata keys the latest requests carry, so a reader knows what report.breakdowns
#: could name. The newest 10,000 requests: enough to see the keys, cheap on any log.
METADATA_KEYS = """
SELECT j.key AS key, COUNT(*) AS requests, COUNT(DISTINCT j.value) AS distinct_values
FROM (SELECT metadata FROM request_log
      WHERE timestamp < :end ORDER BY timestamp DESC LIMIT 10000) AS r,
     json_each(CASE WHEN json_valid(r.metadata) AND json_type(r.metadata) = 'object'
                    THEN r.metadata END) AS j
GROUP BY j.key
ORDER BY requests DESC, key
LIMIT 50
"""


def slug(key: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", key.lower())


def _reached(reader: Reader) -> str:
    return "upstream_latency IS NOT NULL" if "upstream_latency" in reader.columns else "1"


def combo_params(keys: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    paths = {f"p{i}": f'$."{key}"' for i, key in enumerate(keys)}
    names = [f":{name}" for name in paths] or [":p0"]
    if len(names) == 1:
        names.append(names[0])
    return ", ".join(names), paths


class Combos:
    """Each distinct combination's values per key, parsed once: combo text -> {key: [values]}."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.cache: dict[object, list[tuple[str, str | None]]] = {}

    def pairs(self, combo: object) -> list[tuple[str, str | None]]:
        """(key, value) pairs the request counts under: one per list item, None when unset."""
        found = self.cache.get(combo)
        if found is None:
            values = json.loads(combo) if isinstance(combo, str) else []
            found = []
            for i, key in enumerate(self.keys):
                value = values[i] if i < len(values) else None
                items = value if isinstance(value, list) else [value]
                kept = [_text(v) for v in items if v is not None and not isinstance(v, (dict, list))]
                found += [(key, v) for v in dict.fromkeys(kept)] or [(key, None)]
            self.cache[combo] = found
        return found


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _scan(reader: Reader, bounds: dict[str, str]) -> dict[str, object]:
    """Daily rows per (key, value) over the 30 days, p95 latency per (key, value) over 7."""
    keys = reader.sources.breakdowns
    if reader.rollups:
        return _aggregated(reader, bounds, keys)
    placeholders, paths = combo_params(keys)
    combos = Combos(keys)
    daily: dict[tuple[str, str, str | None], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
    now = reader.clock.now
    day = datetime.fromisoformat(bounds["start"]).replace(tzinfo=now.tzinfo)
    sql = BREAKDOWN_DAY.format(paths=placeholders)
    while day < now:
        end = min(day + timedelta(days=1), now)
        date = day.strftime("%Y-%m-%d")
        for r in reader.query(sql, {"start": reader.stamp(day), "end": reader.stamp(end), **paths}):
            for key, value in combos.pairs(r["combo"]):
                acc = daily[(key, date, value)]
                acc[0] += int(r["requests"])
                acc[1] += int(r["tokens"] or 0)
                acc[2] += float(r["cost"] or 0)
                acc[3] += int(r["errors"] or 0)
        day = end
    since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=LATENCY_DAYS - 1)
    latencies: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    sql = BREAKDOWN_LATENCIES.format(paths=placeholders, reached=_reached(reader))
    for combo, latency in reader.rows(sql, {"start": reader.stamp(since), "end": bounds["end"], **paths}):
        for pair in combos.pairs(combo):
            latencies[pair].append(latency)  # in order: the query sorts
    p95 = {pair: round(v[rank(95, len(v)) - 1], 4) for pair, v in latencies.items()}
    return {"daily": daily, "p95": p95}


def _aggregated(reader: Reader, bounds: dict[str, str], keys: tuple[str, ...]) -> dict[str, object]:
    """As _scan, from the report cache (sitegen/aggregates.py): whole days and hours of the
    combinations, the partial hours from the rows; p95 latency from the histogram."""
    counts, latency = breakdown_views(*combo_params(keys))
    combos = Combos(keys)
    now = reader.clock.now
    start = datetime.fromisoformat(bounds["start"]).replace(tzinfo=now.tzinfo)
    daily: dict[tuple[str, str, str | None], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
    for r in reader.aggregates.counters(counts, start, now, "day"):
        for key, value in combos.pairs(r["combo"]):
            acc = daily[(key, str(r["slot"]), value)]
            acc[0] += int(r["requests"])  # type: ignore[call-overload]
            acc[1] += int(r["tokens"] or 0)  # type: ignore[call-overload]
            acc[2] += float(r["cost"] or 0)  # type: ignore[arg-type]
            acc[3] += int(r["errors"] or 0)  # type: ignore[call-overload]
    since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=LATENCY_DAYS - 1)
    bins: dict[tuple[str, str | None], list[Bins]] = defaultdict(list)
    for (_, combo), found in reader.aggregates.histograms(latency, since, now).items():
        for pair in combos.pairs(combo):
            bins[pair].append(found)
    p95 = {pair: value_at(merge_bins(found), 95) for pair, found in bins.items()}
    return {"daily": daily, "p95": p95}


def _scanned(reader: Reader, bounds: dict[str, str]) -> dict[str, object]:
    return reader.memo("breakdowns", lambda: _scan(reader, bounds))  # type: ignore[no-any-return]


def _fold(rows: list[dict[str, object]], keep: int) -> list[dict[str, object]]:
    """The `keep` costliest values, then one row for the rest (costs and counts summed)."""
    rows = sorted(rows, key=lambda r: (-float(r["cost"]), -int(r["requests"]), str(r["value"])))  # type: ignore[arg-type, call-overload]
    if len(rows) <= keep:
        return rows
    rest = rows[keep:]
    other: dict[str, object] = {"value": f"({len(rest)} other values)", "p95_latency": None}
    for field in ("requests", "tokens", "errors"):
        other[field] = sum(int(r[field]) for r in rest)  # type: ignore[call-overload]
    other["cost"] = round(sum(float(r["cost"]) for r in rest), 6)  # type: ignore[arg-type]
    other["error_rate"] = round(100.0 * int(other["errors"]) / int(other["requests"]), 2)  # type: ignore[call-overload]
    return rows[:keep] + [other]


def totals_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Per value of the key over the 30 days: requests, tokens, cost, errors; p95 over 7."""
    key = str(spec.params["key"])
    scan = _scanned(reader, bounds)
    sums: dict[str | None, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
    for (k, _, value), acc in scan["daily"].items():  # type: ignore[attr-defined]
        if k == key:
            for i in range(4):
                sums[value][i] += acc[i]
    rows: list[dict[str, object]] = []
    for value, (requests, tokens, cost, errors) in sums.items():
        rows.append({
            "value": value, "requests": int(requests), "tokens": int(tokens),
            "cost": round(cost, 6), "errors": int(errors),
            "error_rate": round(100.0 * errors / requests, 2) if requests else None,
            "p95_latency": scan["p95"].get((key, value)),  # type: ignore[attr-defined]
        })
    return _fold(rows, TOP_VALUES)


def daily_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Cost by day and value; values beyond the CHART_VALUES costliest are "(other)"."""
    key = str(spec.params["key"])
    daily = {(d, v): acc for (k, d, v), acc in _scanned(reader, bounds)["daily"].items()  # type: ignore[attr-defined]
             if k == key}
    cost: dict[str | None, float] = defaultdict(float)
    for (_, value), acc in daily.items():
        cost[value] += acc[2]
    top = set(sorted(cost, key=lambda v: (-cost[v], str(v)))[:CHART_VALUES])
    merged: dict[tuple[str, str | None], list[float]] = {}
    for (date, value), acc in daily.items():
        shown = value if value in top else "(other)"
        into = merged.setdefault((date, shown), [0, 0.0])
        into[0] += acc[0]
        into[1] += acc[2]
    return [{"date": d, "value": v, "requests": int(a[0]), "cost": round(a[1], 6)}
            for (d, v), a in sorted(merged.items(), key=lambda i: (i[0][0], str(i[0][1])))]


C = Column


def tables_for(keys: tuple[str, ...]) -> tuple[tuple[TableDef, ...], tuple[Section, ...]]:
    """Two tables per configured key, and the Breakdowns page's sections for them."""
    tables: list[TableDef] = []
    sections: list[Section] = []
    names: set[str] = set()
    for key in keys:
        name = f"by_{slug(key)}"
        while name in names:
            name += "_"
        names.add(name)
        tables.append(TableDef(
            name, f"By {key}", BREAKDOWN_DAY, (
                C("value", key, "label"), C("requests", "Requests", "int"),
                C("tokens", "Tokens", "int"), C("cost", "Cost", "usd"),
                C("errors", "Errors", "int"), C("error_rate", "Error rate", "pct"),
                C("p95_latency", f"p95 latency ({LATENCY_DAYS} days)", "sec"),
            ), Window("calendar", 30),
            f"Metadata key {key!r}; the {TOP_VALUES} costliest values, the rest in one row. "
            "When the key holds a list (tags), a request counts once under each item, so the "
            "rows add up to more than the total. p95 latency: nearest rank over the last "
            f"{LATENCY_DAYS} days' requests that reached an upstream.",
            requires=frozenset({"metadata"}), datasette="breakdown", compute=totals_rows,
            params={"key": key}, datasette_params={"key": key},
        ))
        tables.append(TableDef(
            f"{name}_daily", f"Daily cost by {key}", BREAKDOWN_DAY, (
                C("date", "Date", "date"), C("value", key, "label"),
                C("requests", "Requests", "int"), C("cost", "Cost", "usd"),
            ), Window("calendar", 30),
            f"The {CHART_VALUES} costliest values of {key!r} by name, the others as (other).",
            requires=frozenset({"metadata"}), datasette="breakdown_daily_cost",
            compute=daily_rows, params={"key": key}, datasette_params={"key": key},
            show_rows=31 * (CHART_VALUES + 1),
        ))
        sections += [Section(name), Section(f"{name}_daily", f"{name}_daily")]
    return tuple(tables), tuple(sections)


METADATA_KEYS_TABLE = TableDef(
    "metadata_keys", "Metadata keys requests carry", METADATA_KEYS, (
        C("key", "Key"), C("requests", "Requests", "int"),
        C("distinct_values", "Distinct values", "int"),
    ), Window("latest"),
    "Top-level keys of request_log.metadata (the body's metadata, tags under tags). Name any "
    "of them in report.breakdowns of config.yaml to get a section here.",
    requires=frozenset({"metadata"}), empty="No request carries metadata yet.",
)


def page(keys: tuple[str, ...], base: Page) -> tuple[tuple[TableDef, ...], Page]:
    """The Breakdowns page with a section per configured key, after its own sections."""
    tables, sections = tables_for(keys)
    intro = base.intro if keys else (
        base.intro + " None configured yet: set report.breakdowns in config.yaml, e.g. "
        "[project, feature, environment, tags].")
    return tables, Page(base.slug, base.title, intro, sections + base.sections)
