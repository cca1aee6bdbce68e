"""DoPr against its base optimizer, paired by training seed: difference, interval, verdict.

Input: for one cell (task, policy, conditioning, H), each optimizer's success rate on the test
episodes, one value per training seed, in the same seed order (run i of both optimizers shares
data order, noise and initial weights' seed). Output:
- the mean paired difference (DoPr − base) with a 95 % percentile-bootstrap interval over seeds
  (pairs resampled, `resamples` times, seeded: the same inputs give the same interval);
- wins / ties / losses over seeds, and the two-sided exact sign-test p-value (ties dropped);
- the minimum detectable effect: the true mean difference that a two-sided paired test at
  α = 0.05 would detect with 80 % power given the observed spread,
  (z₀.₉₇₅ + z₀.₈₀) · sd(diff) / √n — what "no detectable difference" means in numbers;
- a verdict in words: better / worse when the interval excludes 0, else no detectable
  difference. With few seeds the percentile bootstrap is too narrow, so verdicts on fewer than
  5 pairs are reported as "too few seeds to tell".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z_975, Z_80 = 1.959963984540054, 0.8416212335729143
MIN_PAIRS = 5


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
    minimum_detectable_effect: float | None
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self, dopr: str, base: str, where: str) -> str:
        detail = (
            f"mean {self.mean_difference:+.3f}, 95 % CI [{self.ci_low:+.3f}, {self.ci_high:+.3f}], "
            f"{self.wins} wins / {self.ties} ties / {self.losses} losses over {self.n_pairs} "
            "paired seeds"
        )
        if self.verdict == "no detectable difference" and self.minimum_detectable_effect:
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
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    wins = int(np.sum(difference > tie_tolerance))
    losses = int(np.sum(difference < -tie_tolerance))
    spread = float(difference.std(ddof=1)) if n > 1 else 0.0
    mde = (Z_975 + Z_80) * spread / math.sqrt(n) if n > 1 else None
    if n < MIN_PAIRS:
        verdict = "too few seeds to tell"
    elif low > 0:
        verdict = "better"
    elif high < 0:
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
        minimum_detectable_effect=mde,
        verdict=verdict,
    )
