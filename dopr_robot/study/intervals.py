"""95 % intervals over training seeds that hold at n = 10: for a mean success (or score) in
[0, 1], and for a mean paired difference in [-1, 1].

Why not the bootstrap: BCa at n = 10 covered 0.66–0.90 in simulation (issue 26), and a constant
sample gave a zero-width "95 %" band. The rules here, each checked against known truths in
`tests/study/test_known_truth.py` (≥ 0.93 coverage at nominal 0.95 over normal, bounded-near-1,
rare-success, Bernoulli-per-seed and tie-heavy processes):

- **A mean in [0, 1]** (`mean_interval`): Student's t-interval, clipped to [0, 1], joined with
  the pooled Clopper–Pearson interval over all the seeds' episodes when their count is known
  (at rare success the t-interval collapses onto a few non-zero seeds; the pooled binomial one
  does not). A constant sample at 1 (or 0) gets the interval that holds for *any* distribution
  on [0, 1]: if every one of n seeds scored exactly 1, the mean is at least (α/2)^(1/n), because
  a seed can only score 1 with probability at most the mean (0.69 for n = 10). Pooling the
  episodes instead would claim 0.98 and miss whenever seeds differ (a seed either learns the
  task or not).
- **A mean paired difference in [-1, 1]** (`difference_interval`): the t-interval; when every
  pair is tied the same argument bounds it by ±(1 − (α/2)^(1/n)) (±0.31 for n = 10): ten ties
  do not show that two optimizers are equal to within 0.01. Equal non-zero differences (rare)
  get the same width around their value.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVEL = 0.95
TIE_TOLERANCE = 1e-9


def _t_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    n = len(values)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return float(values.mean() - half), float(values.mean() + half)


def all_equal_bound(n: int, level: float = LEVEL) -> float:
    """The least mean that n observations all at the top of [0, 1] allow (see the docstring)."""
    return float(((1 - level) / 2) ** (1 / n))


def mean_interval(
    values, episodes_per_seed: int | None = None, level: float = LEVEL
) -> tuple[float, float]:
    """Interval for the mean of per-seed values in [0, 1] (see the module docstring)."""
    x = np.asarray(values, float)
    n = len(x)
    if n == 0:
        raise ValueError("need at least one seed")
    if n == 1:
        return 0.0, 1.0
    if np.ptp(x) <= TIE_TOLERANCE and (x[0] >= 1 - TIE_TOLERANCE or x[0] <= TIE_TOLERANCE):
        bound = all_equal_bound(n, level)
        return (bound, 1.0) if x[0] >= 0.5 else (0.0, 1.0 - bound)
    low, high = (x.mean(), x.mean()) if np.ptp(x) <= TIE_TOLERANCE else _t_interval(x, level)
    low = min(low, _ceiling_low(x, level))
    if episodes_per_seed:
        pooled = n * episodes_per_seed
        successes = int(round(x.mean() * pooled))
        binomial = stats.binomtest(successes, pooled).proportion_ci(level, method="exact")
        low, high = min(low, binomial.low), max(high, binomial.high)
    return max(0.0, float(low)), min(1.0, float(high))


def _ceiling_low(x: np.ndarray, level: float) -> float:
    """Lower bound of the mean as 1 − π·g (see the module docstring); 1 when no seed is below."""
    shortfall = 1.0 - x
    below = shortfall[shortfall > TIE_TOLERANCE]
    n, k = len(x), len(below)
    if k == 0:
        return 1.0
    quarter = (1 - level) / 4
    share = 1.0 if k == n else float(stats.beta.ppf(1 - quarter, k + 1, n - k))
    if k == 1:
        gap = float(below[0])
    else:
        spread = stats.t.ppf(1 - quarter, k - 1) * below.std(ddof=1) / np.sqrt(k)
        gap = min(1.0, float(below.mean() + spread))
    return 1.0 - share * gap


def difference_interval(differences, level: float = LEVEL) -> tuple[float, float]:
    """Interval for the mean of paired differences in [-1, 1] (see the module docstring)."""
    d = np.asarray(differences, float)
    n = len(d)
    if n < 2:
        return -1.0, 1.0
    if np.ptp(d) <= TIE_TOLERANCE:  # no spread to scale: as wide as n ties allow
        half = 1.0 - all_equal_bound(n, level)
        return max(-1.0, float(d[0]) - half), min(1.0, float(d[0]) + half)
    low, high = _t_interval(d, level)
    return max(-1.0, low), min(1.0, high)
