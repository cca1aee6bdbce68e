"""A candidate optimizer against its base, paired by training seed: the exact test, Holm, and
the descriptive numbers of a paired comparison.

Input: per cell, each optimizer's number per verdict seed (a run's test AUC, or its success at
one H), in the same seed order — run i of both optimizers shares data order, noise and initial
weights, so the difference is paired. The verdict rules that use these (sooner, plateau,
better, equivalence) are in `convergence.py`; the intervals in `intervals.py`.

- p: the two-sided sign-flip permutation test of the mean paired difference
  (`scipy.stats.permutation_test`, exact enumeration of the 2^n sign patterns up to
  `EXACT_UP_TO` pairs, a seeded Monte Carlo beyond). A tied pair (difference 0) does not move
  under a flip, so the smallest reachable p is 2 / 2^(n − ties).
- Holm–Bonferroni step-down adjustment across a family of tests.
- Descriptive rows: the 95 % interval of the mean difference (`intervals.difference_interval`:
  Student's t, and ±(1 − 0.025^(1/n)) when every pair ties), wins / ties / losses, the exact
  binomial sign test (`scipy.stats.binomtest`, ties dropped) and the uncorrected permutation p.

The plug-in power sentence ("no detectable difference", the minimum detectable effect) is gone:
simulated from the observed pairs, it held for the sample and not for the truth (true power at
the printed MDE averaged 0.6). "No difference" is now only said by the equivalence test, whose
rate is checked against known truths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from .intervals import TIE_TOLERANCE, difference_interval

ALPHA = 0.05
EXACT_UP_TO = 16  # 2^16 = 65,536 sign patterns; beyond, MONTE_CARLO random ones
MONTE_CARLO = 20_000


def _mean_difference(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def permutation_p(difference, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p of the mean paired difference (scipy)."""
    difference = np.asarray(difference, float)
    n = len(difference)
    if not np.any(np.abs(difference) > TIE_TOLERANCE):
        return 1.0
    exact = n <= EXACT_UP_TO
    result = stats.permutation_test(
        (difference, np.zeros(n)),
        _mean_difference,
        permutation_type="samples",  # swapping within a pair flips its difference's sign
        vectorized=True,
        n_resamples=2**n if exact else MONTE_CARLO,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(min(1.0, result.pvalue))


def smallest_reachable_p(n_pairs: int, ties: int) -> float:
    """The exact test's floor: only the all-agreeing sign patterns of the untied pairs reach it."""
    untied = n_pairs - ties
    return 1.0 if untied == 0 else min(1.0, 2.0 / 2**untied)


@dataclass
class PairedDifference:
    """The descriptive numbers of one paired comparison."""

    n_pairs: int
    mean_base: float
    mean_candidate: float
    mean_difference: float
    ci_low: float
    ci_high: float
    wins: int
    ties: int
    losses: int
    sign_test_p: float
    permutation_p: float

    def to_dict(self) -> dict:
        return asdict(self)


def describe_paired(base, candidate, seed: int = 0) -> PairedDifference:
    base_values, candidate_values = np.asarray(base, float), np.asarray(candidate, float)
    if base_values.shape != candidate_values.shape or base_values.ndim != 1 or not len(base):
        raise ValueError("base and candidate need one value per training seed, the same seeds")
    difference = candidate_values - base_values
    wins = int(np.sum(difference > TIE_TOLERANCE))
    losses = int(np.sum(difference < -TIE_TOLERANCE))
    low, high = difference_interval(difference)
    return PairedDifference(
        n_pairs=len(difference),
        mean_base=float(base_values.mean()),
        mean_candidate=float(candidate_values.mean()),
        mean_difference=float(difference.mean()),
        ci_low=low,
        ci_high=high,
        wins=wins,
        ties=len(difference) - wins - losses,
        losses=losses,
        sign_test_p=float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0,
        permutation_p=permutation_p(difference, seed),
    )


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values (monotone, capped at 1). Written here because
    scipy.stats has only the false-discovery-rate procedures (BH, BY), not Holm's."""
    p = np.asarray(p_values, float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()
