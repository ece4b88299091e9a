"""Why cost moved: the change in cost between two periods, split into volume, mix and price.

For period t (0 = the period before, 1 = the current one) and model m:

    n[m,t]  requests that cost something (cost > 0: failed and unpriced requests cost $0)
    c[m,t]  their cost;  N[t] = sum of n[m,t];  s[m,t] = n[m,t] / N[t]  (the model's share)
    u[m,t]  = c[m,t] / n[m,t]  (its cost per request)

so c[m,t] = N[t] * s[m,t] * u[m,t], and the change c[m,1] - c[m,0] splits, in this order, into

    volume[m] = (N1 - N0) * s[m,0] * u[m,0]    more or fewer requests, same mix, same prices
    mix[m]    = N1 * (s[m,1] - s[m,0]) * u[m,0] requests moving toward or away from the model
    price[m]  = N1 * s[m,1] * (u[m,1] - u[m,0]) the model's cost per request moved (provider
                                                prices, longer prompts or answers)

which telescopes to c[m,1] - c[m,0] exactly. Missing reference values: a model new in the
current period takes its current cost per request as reference (u[m,0] = u[m,1]: all of its
cost is mix); when the previous period had no costed request at all, shares take their current
values (s[m,0] = s[m,1]: everything is volume). A vanished model needs neither (s[m,1] = 0).

Exact to the cent and beyond: volume and mix are computed in rational arithmetic and rounded to
1e-8 USD; price is the model's change (from costs rounded to 1e-8) minus those two, which is
the formula above within that rounding. Per model volume + mix + price equals the change to the
last digit, and the totals, sums of the per-model values, add up the same way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from . import series

if TYPE_CHECKING:
    from ..catalogue import TableDef
    from ..data import Reader

#: (label, what it is compared with, segments of the current period, of the previous one);
#: the segments are series.boundaries'. Totals come from the one shared scan (series.py).
PERIODS: tuple[tuple[str, str, frozenset[int], frozenset[int]], ...] = (
    ("Today", "yesterday up to the same time", frozenset({6}), frozenset({4})),
    ("Last 7 days", "the 7 days before", frozenset({3, 4, 5, 6}), frozenset({2})),
    ("Last 30 days", "the 30 days before", frozenset({1, 2, 3, 4, 5, 6}), frozenset({0})),
)
STEP = Decimal("0.00000001")


@dataclass(frozen=True)
class Effects:
    volume: Decimal
    mix: Decimal
    price: Decimal

    @property
    def change(self) -> Decimal:
        return self.volume + self.mix + self.price


def _round(value: Fraction) -> Decimal:
    return Decimal(round(value * 10**8)).scaleb(-8)


def _usd(value: float) -> Decimal:
    return Decimal(f"{value:.8f}")


def decompose(before: dict[str, tuple[int, Decimal]],
              after: dict[str, tuple[int, Decimal]]) -> dict[str, Effects]:
    """Per model (requests, cost) before and after -> its volume, mix and price effects."""
    n0_total = sum(n for n, _ in before.values())
    n1_total = sum(n for n, _ in after.values())
    effects = {}
    for model in sorted(set(before) | set(after)):
        n0, c0 = before.get(model, (0, Decimal(0)))
        n1, c1 = after.get(model, (0, Decimal(0)))
        if n0_total == 0:  # nothing before: current shares and prices are the reference
            volume = Fraction(c1)
            mix = Fraction(0)
        elif n0 == 0:  # a new model: its own current cost per request is its reference
            volume = Fraction(0)
            mix = Fraction(c1)
        else:
            u0 = Fraction(c0) / n0
            volume = Fraction(n1_total - n0_total, n0_total) * n0 * u0
            mix = (n1 - Fraction(n1_total * n0, n0_total)) * u0
        v, m = _round(volume), _round(mix)
        effects[model] = Effects(v, m, (c1 - c0) - v - m)
    return effects


def _period(segments: dict[tuple[str, int], series.Segment],
            wanted: frozenset[int]) -> dict[str, tuple[int, Decimal]]:
    requests: dict[str, int] = defaultdict(int)
    cost: dict[str, float] = defaultdict(float)
    for (model, segment), totals in segments.items():
        if segment in wanted and totals.costed:
            requests[model] += totals.costed
            cost[model] += totals.cost if totals.costed_cost is None else totals.costed_cost
    return {m: (requests[m], _usd(cost[m])) for m in requests}


def _pct(change: Decimal, before: Decimal) -> float | None:
    return round(float(100 * change / before), 1) if before else None


def cost_change_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    """Rows per period: one per model (largest change first), then the period's total."""
    segments = series.segments(reader)
    rows: list[dict[str, object]] = []
    for label, _, current, previous in PERIODS:
        before, after = _period(segments, previous), _period(segments, current)
        effects = decompose(before, after)
        model_rows = []
        for model, fx in effects.items():
            n0, c0 = before.get(model, (0, Decimal(0)))
            n1, c1 = after.get(model, (0, Decimal(0)))
            model_rows.append(_row(label, "model", model, n0, n1, c0, c1, fx))
        model_rows.sort(key=lambda r: (-abs(_num(r, "change")), str(r["model"])))
        total = Effects(*(sum((getattr(fx, k) for fx in effects.values()), Decimal(0))
                          for k in ("volume", "mix", "price")))
        rows += model_rows
        rows.append(_row(label, "total", None,
                         sum(n for n, _ in before.values()), sum(n for n, _ in after.values()),
                         sum((c for _, c in before.values()), Decimal(0)),
                         sum((c for _, c in after.values()), Decimal(0)), total))
    return rows


def _row(period: str, level: str, model: str | None, n0: int, n1: int, c0: Decimal, c1: Decimal,
         fx: Effects) -> dict[str, object]:
    return {
        "period": period, "level": level, "model": model,
        "previous_requests": n0, "requests": n1,
        "previous_cost": float(c0), "cost": float(c1),
        "change": float(fx.change), "change_pct": _pct(fx.change, c0),
        "volume": float(fx.volume), "mix": float(fx.mix), "price": float(fx.price),
    }


# -- the sentence on the overview ---------------------------------------------------------

def _money(value: float) -> str:
    amount = abs(value)
    text = f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:,.4f}"
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def _num(row: dict[str, object], key: str) -> float:
    value = row[key]
    return float(value) if isinstance(value, (int, float)) else 0.0


def explain(rows: list[dict[str, object]], period: str) -> str:
    """One sentence: how much cost moved in `period` and what moved it."""
    mine = [r for r in rows if r["period"] == period]
    total = next((r for r in mine if r["level"] == "total"), None)
    if total is None:
        return ""
    compared = next(p[1] for p in PERIODS if p[0] == period)
    change, cost, before = _num(total, "change"), _num(total, "cost"), _num(total, "previous_cost")
    if not cost and not before:
        return f"{period}: no costed requests, nor in {compared}."
    if change == 0:
        head = f"{period}, cost was unchanged at {_money(cost)[1:]} against {compared}"
    else:
        pct = ""
        if total["change_pct"] is not None:
            ratio = abs(_num(total, "change_pct"))
            pct = (" (over ten times as much)" if ratio > 1000 else
                   f" ({'+' if change > 0 else '−'}{ratio:.1f}%)")
        head = (f"{period}, cost {'rose' if change > 0 else 'fell'} {_money(change)[1:]}{pct} "
                f"to {_money(cost)[1:]} against {compared}")
    models = [r for r in mine if r["level"] == "model"]
    n0, n1 = _num(total, "previous_requests"), _num(total, "requests")
    volume = f"volume {_money(_num(total, 'volume'))}"
    if n0 and n1 > 10 * n0:
        volume += " (over ten times the requests)"
    elif n0:
        volume += f" ({abs(n1 - n0) / n0:.0%} {'more' if n1 >= n0 else 'fewer'} requests)"
    mix = f"mix {_money(_num(total, 'mix'))}"
    toward = max(models, key=lambda r: (_num(r, "mix"), str(r["model"])), default=None)
    if toward is not None and _num(toward, "mix") > 0 and _num(total, "mix") != 0:
        mix += f" (toward {toward['model']})"
    price = f"price {_money(_num(total, 'price'))}"
    mover = max(models, key=lambda r: (abs(_num(r, "price")), str(r["model"])), default=None)
    if mover is not None and _num(mover, "price") != 0:
        price += f" (mostly {mover['model']})"
    return f"{head}: {volume}, {mix}, {price}."
