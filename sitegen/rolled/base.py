"""Shared by the tables computed from the aggregates (sitegen/rolled/): window bounds,
GROUP BY over already aggregated rows, SQL's ORDER BY and rounding."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .. import views as v

if TYPE_CHECKING:
    from ..data import Reader

Rows = list[dict[str, object]]


def moment(stamp: str) -> datetime:
    """A bound as Window.bounds writes it, back to a datetime."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def window(bounds: dict[str, str]) -> tuple[datetime, datetime]:
    return moment(bounds["start"]), moment(bounds["end"])


def last_hour(rows: Iterable[dict[str, object]], keys: tuple[str, ...],
              measure: str = "requests") -> dict[tuple[object, ...], str]:
    """Hourly rows (slot = the hour's label): the last hour in which each combination of
    `keys` has a non-zero `measure`, e.g. to read an exact time from that hour's raw rows."""
    last: dict[tuple[object, ...], str] = {}
    for r in rows:
        key = tuple(r[k] for k in keys)
        if as_int(r[measure]) and str(r["slot"]) > last.get(key, ""):
            last[key] = str(r["slot"])
    return last


def hour_bounds(reader: Reader, label: str, start: datetime, end: datetime) -> dict[str, str]:
    """:start and :end of the hour `label`, cut to the window [start, end)."""
    hour = datetime.strptime(label, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return {"start": reader.stamp(max(hour, start)),
            "end": reader.stamp(min(hour + timedelta(hours=1), end))}


def usd(value: object) -> float:
    return round(float(value or 0.0), 6)  # type: ignore[arg-type]


def as_int(value: object) -> int:
    return int(value or 0)  # type: ignore[call-overload]


def group(rows: Iterable[dict[str, object]], keys: tuple[str, ...],
          measures: tuple[str, ...]) -> dict[tuple[object, ...], dict[str, object]]:
    """Sum `measures` of rows by `keys` (a GROUP BY over already aggregated rows)."""
    out: dict[tuple[object, ...], dict[str, object]] = {}
    for r in rows:
        key = tuple(r[k] for k in keys)
        into = out.setdefault(key, {**{k: r[k] for k in keys}, **{m: 0 for m in measures}})
        for m in measures:
            into[m] += r[m] or 0  # type: ignore[operator]
    return out


def null_first(value: object) -> tuple[int, object]:
    return (0, "") if value is None else (1, value)


def ordered(rows: Rows, sort: Callable[[dict[str, object]], object], limit: int | None = None) -> Rows:
    """ORDER BY `sort` [LIMIT `limit`]."""
    rows.sort(key=sort)  # type: ignore[arg-type]
    return rows if limit is None else rows[:limit]


def rate(errors: object, requests: object) -> float | None:
    return round(100.0 * as_int(errors) / as_int(requests), 2) if as_int(requests) else None


def by_model(reader: Reader, bounds: dict[str, str]) -> list[dict[str, object]]:
    return reader.aggregates.counters(v.MODEL, *window(bounds))
