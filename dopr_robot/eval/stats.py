"""The toolkit's statistics, used by the evaluator and the study alike (scipy underneath).

Closed-loop success: Wilson intervals, area under the success-vs-H curve, H50. Across training
seeds: the percentile bootstrap of a mean, Student-t and normal quantiles, Spearman's rho.

- Wilson 95 % score interval for k successes in n episodes: unlike the normal approximation it
  stays inside [0, 1] and is honest at 0/n and n/n, which is where long-horizon cells live.
- AUC: the trapezoid area under success(H) over log2 H, divided by the log2 range, so it is the
  mean success over the swept range on a doubling scale (1.0 = perfect at every H). With one H it
  is that H's success.
- H50: the horizon at which success falls to half of its value at the shortest H, by linear
  interpolation in log2 H between the two evaluated horizons around the crossing; None if it
  never falls that far within the sweep (it is at least the longest H evaluated).
- Bootstrap: resamples of the values with replacement from a seeded generator, the 2.5 and 97.5
  percentiles of their means (the same numbers for the same seed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

Z_95 = float(stats.norm.ppf(0.975))
Z_80 = float(stats.norm.ppf(0.80))


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    if n <= 0:
        raise ValueError(f"need at least one episode, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def area_under_curve(horizons: Sequence[int], success: Sequence[float]) -> float:
    pairs = sorted(zip(horizons, success, strict=True))
    if len(pairs) == 1:
        return float(pairs[0][1])
    x = [math.log2(h) for h, _ in pairs]
    y = [s for _, s in pairs]
    area = sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(x) - 1))
    return area / (x[-1] - x[0])


def h50(horizons: Sequence[int], success: Sequence[float]) -> float | None:
    pairs = sorted(zip(horizons, success, strict=True))
    half = pairs[0][1] / 2
    if pairs[0][1] == 0:
        return None
    for (h0, s0), (h1, s1) in zip(pairs[:-1], pairs[1:], strict=True):
        if s1 <= half:
            if s0 == s1:
                return float(h1)
            fraction = (s0 - half) / (s0 - s1)
            return 2 ** (math.log2(h0) + fraction * (math.log2(h1) - math.log2(h0)))
    return None


def t_quantiles(df: int) -> tuple[float, float]:
    """(t_0.975, t_0.80) at df degrees of freedom."""
    return float(stats.t.ppf(0.975, df)), float(stats.t.ppf(0.80, df))


def bootstrap_mean_interval(
    values: Sequence[float], resamples: int, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean; (mean, mean) with fewer than 2 values."""
    data = np.asarray(values, float)
    if len(data) < 2:
        return float(data.mean()), float(data.mean())
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (scipy, average ranks for ties); None with fewer than 3 points or a
    constant side, where it is undefined."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.spearmanr(x, y).statistic)
