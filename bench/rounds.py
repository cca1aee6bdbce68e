"""What the benches share for interleaved rounds: the paired ratio of two paths' timings."""

from __future__ import annotations

import statistics


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of numerator / denominator within each round (the two paths run back
    to back in a round, so a slow stretch of a shared machine slows both sides alike)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))
