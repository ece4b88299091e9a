"""Any window of the log, aggregated by a view (sitegen/views.py), at a cost that does not grow
with history: whole days and hours from the report cache, the partial hours at either end from
the raw rows. Counts and sums are exact; percentiles come from histograms, within one bucket
(10 %) of the exact nearest-rank value and never below it (proxy.logdb.rollups).

On a log without rollups (a guide-only log, an older gateway's) there is no cache: every
window is read from the raw rows and histograms hold exact values, so percentiles are exact.

For pages: `reader.aggregates.counters(view, start, end, slot=None|'day'|'hour')` and
`.histograms(...)`, and `model_stats(reader, days)` below (per model: requests, tokens, cost,
error rate, latency and time-to-first-token percentiles).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from proxy.logdb.rollups import nearest_rank

from . import views as v
from .cache import ReportCache
from .errors import DatabaseError, Unavailable
from .views import MAX, MIN, View

if TYPE_CHECKING:
    from .data import Reader

Key = tuple[object, ...]
Bins = list[tuple[float, int, float]]

#: Is anything logged after the build's clock within its hour (then that hour is read raw)?
SETTLED = "SELECT 1 FROM request_log WHERE timestamp >= :end AND timestamp < :after LIMIT 1"

#: What a page says where it shows percentiles read from histograms.
BUCKET_NOTE = ("Percentiles here come from hourly histograms: each is within one bucket (10 %) "
               "of the exact nearest-rank value, never below it.")
EXACT_NOTE = "Percentiles are exact (read from the raw rows: this log has no rollups)."


def _label(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:00:00")


def split(start: datetime, end: datetime) -> tuple[list[tuple[datetime, datetime]],
                                                    tuple[datetime, datetime] | None]:
    """[start, end) as raw partial hours at either end, and the whole hours between."""
    floor = start.replace(minute=0, second=0, microsecond=0)
    h0 = floor if floor == start else floor + timedelta(hours=1)
    h1 = end.replace(minute=0, second=0, microsecond=0)
    if h0 > h1 or start >= end:  # within one hour
        return ([(start, end)] if start < end else []), None
    raw = [(start, h0)] if start < h0 else []
    if h1 < end:
        raw.append((h1, end))
    return raw, (h0, h1)  # no whole hour when h0 == h1


def _slot(label: str, slot: str | None) -> str:
    """An hour's (or a day's) label as the slot a read groups by."""
    return "" if slot is None else label[:10] if slot == "day" else label


def _combine(into: list[object], row: Sequence[object], how: tuple[str, ...]) -> None:
    for i, kind in enumerate(how):
        value = row[i]
        if value is None:
            continue
        current = into[i]
        if current is None:
            into[i] = value
        elif kind == MIN:
            into[i] = min(current, value)  # type: ignore[type-var]
        elif kind == MAX:
            into[i] = max(current, value)  # type: ignore[type-var]
        else:
            into[i] = current + value  # type: ignore[operator]


class Aggregates:
    """Window reads for one build (memoised): from the cache when there is one, else raw."""

    def __init__(self, reader: Reader, cache: ReportCache | None) -> None:
        self.reader = reader
        self.cache = cache
        self._memo: dict[tuple[object, ...], object] = {}
        self.earliest: datetime | None = None  # the oldest hour a read asked the cache for

    @property
    def exact(self) -> bool:
        """True when percentiles are exact (no cache: every window read from raw rows)."""
        return self.cache is None

    def counters(self, view: View, start: datetime, end: datetime, slot: str | None = None,
                 only: dict[str, object] | None = None) -> list[dict[str, object]]:
        """Rows of `view` over [start, end): its dimensions and measures, with `slot` ('' for
        the whole window, 'YYYY-MM-DD' by day, 'YYYY-MM-DD HH:00:00' by hour); `only`: keep
        the rows whose dimensions have these values."""
        assert not view.histogram, view.name
        merged = self._read(view, start, end, slot, only)
        names = ("slot",) + view.columns
        return [dict(zip(names, key + tuple(values), strict=True))
                for key, values in sorted(merged.items(), key=lambda kv: _order(kv[0]))]

    def histograms(self, view: View, start: datetime, end: datetime, slot: str | None = None,
                   only: dict[str, object] | None = None) -> dict[Key, Bins]:
        """(slot, dimensions but bucket) -> [(bucket, requests, max_value)] over [start, end)."""
        assert view.histogram, view.name
        out: dict[Key, Bins] = {}
        for key, (requests, top) in self._read(view, start, end, slot, only).items():
            out.setdefault(key[:-1], []).append((key[-1], int(requests), float(top)))  # type: ignore[arg-type]
        for bins in out.values():
            bins.sort(key=lambda b: b[0])
        return out

    def _read(self, view: View, start: datetime, end: datetime, slot: str | None,
              only: dict[str, object] | None) -> dict[Key, list[object]]:
        only = only or {}
        memo = ("read", view.name, start, end, slot, tuple(sorted(only.items())))
        if memo in self._memo:
            return self._memo[memo]  # type: ignore[return-value]
        how = tuple(kind for _, kind in view.measures)
        dims = len(view.dims)
        wanted = [(1 + view.dims.index(d), value) for d, value in only.items()]
        merged: dict[Key, list[object]] = {}
        raw, hours = split(start, end) if self.cache is not None else ([(start, end)], None)
        if hours is not None and raw and raw[-1][0] == hours[1] and self._settled(end):
            # The last partial hour holds nothing after `end`: its cached hour is that part.
            raw, hours = raw[:-1], (hours[0], hours[1] + timedelta(hours=1))
        for a, b in raw:
            for row in self._raw(view, a, b):
                if all(row[i] == value for i, value in wanted):
                    key = (_slot(str(row[0]), slot),) + tuple(row[1:1 + dims])
                    _combine(merged.setdefault(key, [None] * len(how)), row[1 + dims:], how)
        if hours is not None and hours[0] < hours[1]:
            for row in self._cached(view, *hours, slot, only):
                key = (str(row[0]),) + tuple(row[1:1 + dims])
                _combine(merged.setdefault(key, [None] * len(how)), row[1 + dims:], how)
        self._memo[memo] = merged
        return merged

    def _settled(self, end: datetime) -> bool:
        """No row logged in [end, the end of its hour): rows the clock has not reached yet."""
        memo = ("settled", end)
        if memo not in self._memo:
            after = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            self._memo[memo] = not self.reader.rows(SETTLED, {
                "end": self.reader.stamp(end), "after": self.reader.stamp(after)})
        return self._memo[memo]  # type: ignore[return-value]

    def _raw(self, view: View, a: datetime, b: datetime) -> list[sqlite3.Row]:
        """Raw rows of [a, b) grouped by hour and the view's dimensions (memoised: windows
        ending at the build's clock share their last partial hour). A part of an hour the
        clock has passed is read with the rest of that hour, split at the part's inner edge:
        the windows that meet there (this 7 days, the 7 before) share one read."""
        missing = view.requires - self.reader.columns
        if missing:
            raise Unavailable(f"this log does not record {', '.join(sorted(missing))}")
        hour = a.replace(minute=0, second=0, microsecond=0)
        after = hour + timedelta(hours=1)
        if self.cache is not None and after <= self.reader.clock.now and (a == hour) != (b == after):
            edge = b if a == hour else a
            sides = self._halves(view, hour, edge)
            return sides[0] if a == hour else sides[1]
        memo = ("raw", view.name, a, b)
        if memo not in self._memo:
            sql = v.raw_sql(view, self.reader.columns, exact=self.exact)
            params = {"start": self.reader.stamp(a), "end": self.reader.stamp(b), **view.params}
            self._memo[memo] = self.reader.rows(sql, params)
        return self._memo[memo]  # type: ignore[return-value]

    def _halves(self, view: View, hour: datetime, edge: datetime) -> tuple[list[tuple], list[tuple]]:
        """One hour's rows before and after `edge`, from one read."""
        memo = ("halves", view.name, hour, edge)
        if memo not in self._memo:
            label = _label(hour)
            sql = v.raw_sql(view, self.reader.columns, exact=self.exact,
                            hour="CASE WHEN timestamp < :edge THEN 0 ELSE 1 END")
            found = self.reader.rows(sql, {"start": self.reader.stamp(hour),
                                           "end": self.reader.stamp(hour + timedelta(hours=1)),
                                           "edge": self.reader.stamp(edge), **view.params})
            halves: tuple[list[tuple], list[tuple]] = ([], [])
            for row in found:
                halves[row[0]].append((label,) + tuple(row[1:]))
            self._memo[memo] = halves
        return self._memo[memo]  # type: ignore[return-value]

    def _cached(self, view: View, h0: datetime, h1: datetime, slot: str | None,
                only: dict[str, object]) -> list[tuple[object, ...]]:
        assert self.cache is not None
        self.earliest = h0 if self.earliest is None else min(self.earliest, h0)
        try:
            self.cache.ensure(view, _label(h0))
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot read the database ({exc})") from None
        d0 = h0.replace(hour=0) + (timedelta(days=1) if h0.hour else timedelta(0))
        d1 = h1.replace(hour=0)
        if slot == "hour" or d0 >= d1:
            where = "grain = 'h' AND slot >= :h0 AND slot < :h1"
        else:
            where = ("(grain = 'd' AND slot >= :d0 AND slot < :d1) OR (grain = 'h' AND "
                     "((slot >= :h0 AND slot < :d0h) OR (slot >= :d1h AND slot < :h1)))")
        filters = "".join(f" AND {d} IS :only_{d}" for d in only)
        # Added up here, in time order, rather than by SQL's SUM in whatever order its index
        # walk gives: the same hours give the same sums to the last bit, however the cache
        # was filled (builds stay reproducible).
        sql = (f"SELECT slot, {', '.join(view.columns)} FROM cache.v_{view.name} "
               f"WHERE ({where}){filters} ORDER BY slot")
        found = self.reader.rows(sql, {
            "h0": _label(h0), "h1": _label(h1), "d0": d0.strftime("%Y-%m-%d"),
            "d1": d1.strftime("%Y-%m-%d"), "d0h": _label(d0), "d1h": _label(d1),
            **{f"only_{d}": value for d, value in only.items()}})
        return [(_slot(row[0], slot),) + tuple(row[1:]) for row in found]


def _order(key: Key) -> tuple[object, ...]:
    """SQL's ascending order: NULL first, then numbers, then text."""
    return tuple((0, 0) if k is None else (1, k) if isinstance(k, (int, float)) else (2, str(k))
                 for k in key)


def value_at(bins: Iterable[tuple[float, int, float]], p: float, digits: int = 4) -> float | None:
    """Nearest-rank percentile p of one histogram (bins in bucket order, as histograms() and
    merge_bins() give them), rounded; None when it is empty. As rollups.percentile(), without
    taking buckets for integers: in raw mode a "bucket" is the exact value."""
    bins = list(bins)
    total = sum(n for _, n, _ in bins)
    if not total:
        return None
    rank, seen = nearest_rank(p, total), 0
    for _, n, top in bins:
        seen += n
        if seen >= rank:
            return round(top, digits)
    return None  # pragma: no cover - rank <= total


def merge_bins(groups: Iterable[Bins]) -> Bins:
    """Several histograms (e.g. every model's) as one."""
    merged: dict[float, list[float]] = {}
    for bins in groups:
        for bucket, requests, top in bins:
            slot = merged.setdefault(bucket, [0, top])
            slot[0] += requests
            slot[1] = max(slot[1], top)
    return [(b, int(n), t) for b, (n, t) in sorted(merged.items())]


def model_stats(reader: Reader, days: int) -> list[dict[str, object]]:
    """Per model over the last `days` days to the build's clock: requests, tokens, cost, errors,
    error rate, latency p50/p95 and time-to-first-token p50/p95 (both over the requests that
    reached an upstream, the report's rule). Sorted by model."""
    agg = reader.aggregates
    end = reader.clock.now
    start = end - timedelta(days=days)
    latency = agg.histograms(v.LATENCY, start, end)
    ttft: dict[object, Bins] = {}
    if "time_to_first_token" in reader.columns:
        for (_, model, _, _), bins in agg.histograms(v.TTFT, start, end, only={"reached": 1}).items():
            ttft[model] = merge_bins([ttft.get(model, []), bins])
    rows = []
    for r in agg.counters(v.MODEL, start, end):
        model, requests = r["model"], int(r["requests"])  # type: ignore[call-overload]
        lat, first = latency.get(("", model), []), ttft.get(model, [])
        rows.append({
            "model": model, "requests": requests, "tokens": int(r["total_tokens"] or 0),  # type: ignore[call-overload]
            "cost": round(float(r["cost"] or 0.0), 6), "errors": int(r["errors"] or 0),  # type: ignore[arg-type, call-overload]
            "error_rate": round(100.0 * int(r["errors"] or 0) / requests, 2) if requests else None,  # type: ignore[call-overload]
            "p50": value_at(lat, 50), "p95": value_at(lat, 95),
            "ttft_p50": value_at(first, 50), "ttft_p95": value_at(first, 95),
        })
    return rows
