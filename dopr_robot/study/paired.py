"""DoPr against its base optimizer, paired by training seed: difference, interval, verdict.

Input: for one cell (task, policy, conditioning, H), each optimizer's success rate on the test
episodes, one value per training seed, in the same seed order (run i of both optimizers shares
data order, noise and initial weights' seed). Output:
- the mean paired difference (DoPr − base) with a 95 % percentile-bootstrap interval over seeds
  (pairs resampled, `resamples` times, seeded: the same inputs give the same interval);
- wins / ties / losses over seeds, and the two-sided exact sign-test p-value (ties dropped);
- the minimum detectable effect: the true mean difference that a two-sided paired t-test at
  α = 0.05 would detect with 80 % power given the observed spread,
  (t₀.₉₇₅ + t₀.₈₀)(n − 1) · sd(diff) / √n — what "no detectable difference" means in numbers.
  None when n is so small that no exact test can reach α (n ≤ 5): then nothing was detectable;
- the two-sided exact sign-flip permutation p-value of the mean difference: under "no effect"
  each pair's difference is as likely negative as positive, so all 2^n sign patterns are
  enumerated (n ≤ 20; a seeded Monte Carlo of 100,000 patterns beyond);
- a verdict in words: better / worse when the bootstrap interval excludes 0 **and** the exact
  permutation p < 0.05, else no detectable difference. The second condition matters at small n:
  with 5 pairs the percentile bootstrap is narrower than its nominal 95 % (an interval over five
  all-positive differences always excludes 0), while no exact test can go below p = 2/32 = 0.0625
  — five seeds cannot show an effect at 5 %, and the verdict says so instead of over-claiming.
  Six unanimous seeds reach p = 2/64. Fewer than 5 pairs are "too few seeds to tell".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..eval.stats import bootstrap_mean_interval, t_quantiles

MIN_PAIRS = 5
ALPHA = 0.05
EXACT_UP_TO = 20


@dataclass
class PairedComparison:
    n_pairs: int
    mean_base: float
    mean_dopr: float
    mean_difference: float
    ci_low: float
    ci_high: float
    wins: int
    ties: int
    losses: int
    sign_test_p: float
    permutation_p: float
    minimum_detectable_effect: float | None
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self, dopr: str, base: str, where: str) -> str:
        detail = (
            f"mean {self.mean_difference:+.3f}, 95 % CI [{self.ci_low:+.3f}, {self.ci_high:+.3f}], "
            f"{self.wins} wins / {self.ties} ties / {self.losses} losses over {self.n_pairs} "
            f"paired seeds, exact permutation p = {self.permutation_p:.3g}"
        )
        if self.verdict == "no detectable difference":
            if not exact_test_can_reject(self.n_pairs):
                detail += (
                    f"; with {self.n_pairs} paired seeds no exact test can reach p < 0.05, so "
                    "no difference was detectable"
                )
            elif self.minimum_detectable_effect:
                detail += (
                    f"; a difference of {self.minimum_detectable_effect:.2f} would have been "
                    "detected with 80 % power"
                )
        return f"{dopr} vs {base}, {where}: {self.verdict} ({detail})."


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial test of wins vs losses at p = 1/2 (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def exact_test_can_reject(n_pairs: int) -> bool:
    """The smallest two-sided exact sign-flip p-value is 2 / 2^n."""
    return 2 / 2**n_pairs < ALPHA


def permutation_test(difference: np.ndarray, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value of mean(difference) (exact up to 20 pairs)."""
    n = len(difference)
    observed = abs(difference.mean())
    if n <= EXACT_UP_TO:
        patterns = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    else:
        patterns = np.random.default_rng(seed).integers(0, 2, size=(100_000, n))
    means = np.abs(((1 - 2 * patterns) * difference).mean(axis=1))
    return float(np.mean(means >= observed - 1e-12))


def compare_paired(
    base: list[float],
    dopr: list[float],
    resamples: int = 10_000,
    seed: int = 0,
    tie_tolerance: float = 1e-9,
) -> PairedComparison:
    base_values, dopr_values = np.asarray(base, float), np.asarray(dopr, float)
    if base_values.shape != dopr_values.shape or base_values.ndim != 1 or not len(base_values):
        raise ValueError("base and dopr need one value per training seed, the same seeds")
    difference = dopr_values - base_values
    n = len(difference)
    low, high = bootstrap_mean_interval(difference, resamples, seed)
    wins = int(np.sum(difference > tie_tolerance))
    losses = int(np.sum(difference < -tie_tolerance))
    spread = float(difference.std(ddof=1)) if n > 1 else 0.0
    mde = None
    if n > 1 and exact_test_can_reject(n):
        t_975, t_80 = t_quantiles(n - 1)
        mde = (t_975 + t_80) * spread / math.sqrt(n)
    permutation_p = permutation_test(difference, seed)
    if n < MIN_PAIRS:
        verdict = "too few seeds to tell"
    elif low > 0 and permutation_p < ALPHA:
        verdict = "better"
    elif high < 0 and permutation_p < ALPHA:
        verdict = "worse"
    else:
        verdict = "no detectable difference"
    return PairedComparison(
        n_pairs=n,
        mean_base=float(base_values.mean()),
        mean_dopr=float(dopr_values.mean()),
        mean_difference=float(difference.mean()),
        ci_low=float(low),
        ci_high=float(high),
        wins=wins,
        ties=n - wins - losses,
        losses=losses,
        sign_test_p=sign_test(wins, losses),
        permutation_p=permutation_p,
        minimum_detectable_effect=mde,
        verdict=verdict,
    )
