"""The toolkit's statistics, used by the evaluator and the study alike (scipy underneath).

Closed-loop success: Wilson intervals, area under the success-vs-H curve, H50 and H at an
absolute success level, Spearman's rho. (Statistics across training seeds live in the study:
intervals in `study/intervals.py`, paired tests and the bootstrap in `study/paired.py`, the
sooner / plateau / better rules in `study/convergence.py`, also on scipy.)

- Wilson 95 % score interval for k successes in n episodes: unlike the normal approximation it
  stays inside [0, 1] and is honest at 0/n and n/n, which is where long-horizon cells live.
- AUC: the trapezoid area under success(H) over log2 H, divided by the log2 range, so it is the
  mean success over the swept range on a doubling scale (1.0 = perfect at every H). With one H it
  is that H's success.
- H50: the horizon at which success falls to half of its value at the shortest H, by linear
  interpolation in log2 H between the two evaluated horizons around the crossing; None if it
  never falls that far within the sweep (it is at least the longest H evaluated). It is
  *relative* — a policy at 0.4 falling to 0.2 has the same H50 as one at 1.0 falling to 0.5 — so
  it describes one curve's shape, not which of two policies lasts longer.
- H at a level (`h_at_level`, the study's "H@0.5"): the horizon at which success falls below an
  absolute level, interpolated the same way: comparable across policies and optimizers. None if
  success stays at or above the level over the sweep; 0.0 if it is below already at the shortest
  H.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats

Z_95 = float(stats.norm.ppf(0.975))


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval (scipy's `binomtest(...).proportion_ci(method="wilson")`) at the
    two-sided confidence level of the normal quantile `z`."""
    if n <= 0:
        raise ValueError(f"need at least one episode, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    level = 2 * float(stats.norm.cdf(z)) - 1
    interval = stats.binomtest(successes, n).proportion_ci(level, method="wilson")
    return float(interval.low), float(interval.high)


def area_under_curve(horizons: Sequence[int], success: Sequence[float]) -> float:
    pairs = sorted(zip(horizons, success, strict=True))
    if len(pairs) == 1:
        return float(pairs[0][1])
    x = [math.log2(h) for h, _ in pairs]
    y = [s for _, s in pairs]
    area = sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(x) - 1))
    return area / (x[-1] - x[0])


def h50(horizons: Sequence[int], success: Sequence[float]) -> float | None:
    """Where success halves relative to the shortest H (None if it never does, or is 0 there)."""
    pairs = sorted(zip(horizons, success, strict=True))
    if pairs[0][1] == 0:
        return None
    return _crossing(pairs, pairs[0][1] / 2)


def h_at_level(
    horizons: Sequence[int], success: Sequence[float], level: float = 0.5
) -> float | None:
    """Where success falls below an absolute `level` (0.0 if below at the shortest H)."""
    pairs = sorted(zip(horizons, success, strict=True))
    if pairs[0][1] < level:
        return 0.0
    return _crossing(pairs, level, strict=True)


def _crossing(pairs: list, level: float, strict: bool = False) -> float | None:
    """The first H where success reaches `level` from above (falls below it when `strict`),
    interpolated linearly in log2 H; None if it never does within the sweep."""
    for (h0, s0), (h1, s1) in zip(pairs[:-1], pairs[1:], strict=True):
        if s1 < level or (not strict and s1 <= level):
            if s0 == s1:
                return float(h1)
            fraction = (s0 - level) / (s0 - s1)
            return 2 ** (math.log2(h0) + fraction * (math.log2(h1) - math.log2(h0)))
    return None


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (scipy, average ranks for ties); None with fewer than 3 points or a
    constant side, where it is undefined."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.spearmanr(x, y).statistic)
