"""Robust statistics and nearest-rank percentiles shared by the analyses."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def rank(p: int, n: int) -> int:
    """Nearest-rank position (1-based) of percentile p among n values: ceil(p * n / 100)."""
    return (p * n + 99) // 100


@dataclass(frozen=True)
class Band:
    """A value's recent history: its median and MAD (median absolute deviation)."""

    median: float
    mad: float
    scale: float  # the MAD, or its floor when the history is too flat to judge by
    upper: float  # median + k * scale: above it is an anomaly

    def score(self, value: float) -> float:
        """How many scales above the median `value` lies."""
        return (value - self.median) / self.scale


def band(history: Sequence[float], k: float, floor_ratio: float, floor_abs: float) -> Band:
    """median + k * max(MAD, floor_ratio * median, floor_abs): a spike moves neither the median
    nor the MAD of the history it is judged against, unlike a mean and standard deviation."""
    median = statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history)
    scale = max(mad, floor_ratio * abs(median), floor_abs)
    return Band(median, mad, scale, median + k * scale)
