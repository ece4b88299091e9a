"""Overview, Cost and Usage tables from the aggregates (see sitegen/rolled/__init__.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from .. import views as v
from .base import Rows, as_int, by_model, group, null_first, ordered, rate, usd, window

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

# -- overview --------------------------------------------------------------------------------

def todays_stats(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = window(bounds)
    t = group(reader.aggregates.counters(v.MODEL, start, end), (),
              ("requests", "total_tokens", "cost", "errors")).get((), {})
    last = group(reader.aggregates.counters(v.MODEL, end - timedelta(hours=1), end), (),
                 ("errors",)).get((), {})
    return [{"requests": as_int(t.get("requests")), "tokens": as_int(t.get("total_tokens")),
             "cost": usd(t.get("cost")), "errors": as_int(t.get("errors")),
             "errors_last_hour": as_int(last.get("errors"))}]



def todays_top_models(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "cost": usd(r["cost"])}
            for r in by_model(reader, bounds)]
    return ordered(rows, lambda r: (-as_int(r["requests"]), r["model"]), 5)


def top_models(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "tokens": r["total_tokens"],
             "cost": usd(r["cost"]), "error_rate": rate(r["errors"], r["requests"])}
            for r in by_model(reader, bounds)]
    return ordered(rows, lambda r: (-as_int(r["requests"]), r["model"]), 5)


# -- cost ------------------------------------------------------------------------------------

def _days(start: datetime, end: datetime) -> list[str]:
    """DATE(:start) .. DATE(:end), as DAILY_COST_TREND's calendar."""
    first: date = start.date()
    return [(first + timedelta(days=i)).isoformat() for i in range((end.date() - first).days + 1)]


def daily_cost_trend(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    start, end = window(bounds)
    daily = group(reader.aggregates.counters(v.MODEL, start, end, "day"), ("slot",),
                  ("requests", "cost"))
    return [{"date": day, "requests": as_int(daily.get((day,), {}).get("requests")),
             "daily_cost": usd(daily.get((day,), {}).get("cost"))} for day in _days(start, end)]


def daily_cost_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = reader.aggregates.counters(v.MODEL, *window(bounds), "day")
    return [{"date": r["slot"], "model": r["model"], "requests": r["requests"],
             "cost": usd(r["cost"])} for r in rows]


def cost_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "prompt_tokens": r["prompt_tokens"],
             "completion_tokens": r["completion_tokens"], "total_cost": usd(r["cost"]),
             "avg_cost": round(float(r["cost"]) / as_int(r["requests"]), 8)}  # type: ignore[arg-type]
            for r in by_model(reader, bounds)]
    return ordered(rows, lambda r: (-float(r["total_cost"]), r["model"]))  # type: ignore[arg-type]


def _who(reader: Reader, bounds: dict[str, str], keys: tuple[str, ...]) -> Rows:
    rows = reader.aggregates.counters(v.WHO, *window(bounds))
    return list(group(rows, keys, ("requests", "total_tokens", "cost")).values())


def _costliest(rows: Rows, key: str, limit: int | None) -> Rows:
    return ordered(rows, lambda r: (-float(r["total_cost"]), null_first(r[key])), limit)  # type: ignore[arg-type]


def top_users_by_cost(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"user_id": r["user_id"], "requests": r["requests"], "tokens": r["total_tokens"],
             "total_cost": usd(r["cost"])} for r in _who(reader, bounds, ("user_id",))]
    return _costliest(rows, "user_id", 25)


def cost_by_key(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"key_alias": r["key_alias"], "requests": r["requests"], "tokens": r["total_tokens"],
             "total_cost": usd(r["cost"])} for r in _who(reader, bounds, ("key_alias",))]
    return _costliest(rows, "key_alias", 25)


def _distinct(rows: Rows, key: str, counted: str) -> dict[object, int]:
    """COUNT(DISTINCT counted) per key (NULLs not counted)."""
    seen: dict[object, set[object]] = defaultdict(set)
    for r in rows:
        if r[counted] is not None and as_int(r["requests"]):
            seen[r[key]].add(r[counted])
    return {k: len(s) for k, s in seen.items()}


def cost_by_team(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    pairs = _who(reader, bounds, ("team_id", "key_hash"))
    keys = _distinct(pairs, "team_id", "key_hash")
    rows = [{"team_id": r["team_id"], "requests": r["requests"], "keys": keys.get(r["team_id"], 0),
             "tokens": r["total_tokens"], "total_cost": usd(r["cost"])}
            for r in group(pairs, ("team_id",), ("requests", "total_tokens", "cost")).values()]
    return _costliest(rows, "team_id", 25)


# -- usage -----------------------------------------------------------------------------------

def usage_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"model": r["model"], "requests": r["requests"], "prompt_tokens": r["prompt_tokens"],
             "completion_tokens": r["completion_tokens"], "total_tokens": r["total_tokens"],
             "total_cost": usd(r["cost"])} for r in by_model(reader, bounds)]
    return ordered(rows, lambda r: (-float(r["total_cost"]), r["model"]))  # type: ignore[arg-type]


def usage_by_user(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = [{"user_id": r["user_id"], "requests": r["requests"], "total_tokens": r["total_tokens"],
             "total_cost": usd(r["cost"])} for r in _who(reader, bounds, ("user_id",))]
    return _costliest(rows, "user_id", None)


def usage_by_key(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    pairs = _who(reader, bounds, ("key_alias", "user_id"))
    users = _distinct(pairs, "key_alias", "user_id")
    rows = [{"key_alias": r["key_alias"], "requests": r["requests"],
             "users": users.get(r["key_alias"], 0), "total_tokens": r["total_tokens"],
             "total_cost": usd(r["cost"])}
            for r in group(pairs, ("key_alias",), ("requests", "total_tokens", "cost")).values()]
    return ordered(rows, lambda r: (-as_int(r["requests"]), null_first(r["key_alias"])))


def daily_tokens_by_model(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    rows = reader.aggregates.counters(v.MODEL, *window(bounds), "day")
    return [{"date": r["slot"], "model": r["model"], "prompt_tokens": r["prompt_tokens"],
             "completion_tokens": r["completion_tokens"], "total_tokens": r["total_tokens"]}
            for r in rows]


def token_efficiency(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> Rows:
    out = []
    for r in by_model(reader, bounds):
        n = as_int(r["requests"])
        prompt, completion = as_int(r["prompt_tokens"]), as_int(r["completion_tokens"])
        out.append({"model": r["model"], "avg_input": round(prompt / n, 1),
                    "avg_output": round(completion / n, 1),
                    "avg_total": round(as_int(r["total_tokens"]) / n, 1),
                    "output_per_input": round(completion / max(prompt, 1), 3)})
    return out  # by model already


