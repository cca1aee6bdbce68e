"""A candidate optimizer against its base, paired by training seed: the test, its power, Holm.

Input: per cell, each optimizer's number per verdict seed (a run's test AUC, or its success at
one H), in the same seed order — run i of both optimizers shares data order, noise and initial
weights, so the difference is paired. Everything here goes through scipy.stats.

**The rule** (`headline_verdicts`, one test per cell and pair, on the AUC):
1. p: the two-sided sign-flip permutation test of the mean paired difference
   (`scipy.stats.permutation_test`, exact enumeration of the 2^n sign patterns up to
   `EXACT_UP_TO` pairs, a seeded Monte Carlo beyond). A tied pair (difference 0) does not move
   under a flip, so the smallest reachable p is 2 / 2^(n − ties).
2. Holm–Bonferroni across all the study's headline tests (cells × pairs) at family-wise α = 0.05.
3. better / worse when the Holm-adjusted p < α, by the sign of the mean difference.
   Otherwise "no detectable difference" if the rule had ≥ 80 % power for some effect ≤ 1 AUC
   (the minimum detectable effect below is printed with it), else "inconclusive" with the reason.

**Power, true of that rule** (`minimum_detectable_effect`): the smallest true mean difference
at which the rule rejects in ≥ 80 % of seeded simulated studies of the same n, each drawn under
a shift model of the observed pairs: n pairs resampled from the observed ones; a tied pair stays
tied (at the ceiling or floor, where both optimizers succeed or fail on every episode, a better
optimizer cannot show), an untied one is its observed difference re-centred on the untied mean,
plus the shift. The printed MDE is the mean difference over all n pairs that this produces, and
the test is the sign-flip test at α / m (m = the number of headline tests): Holm's first and
strictest step, so under Holm the power is at least the stated 80 %.

Per-H rows and the AUC row's interval are descriptive: BCa bootstrap interval of the mean
difference (`scipy.stats.bootstrap`), wins / ties / losses, the exact binomial sign test
(`scipy.stats.binomtest`, ties dropped) and the uncorrected permutation p.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.80
EXACT_UP_TO = 16  # 2^16 = 65,536 sign patterns; beyond, MONTE_CARLO random ones
MONTE_CARLO = 20_000
BOOTSTRAP_RESAMPLES = 9_999
POWER_DRAWS = 2_000  # simulated studies per effect size
POWER_EXACT_UP_TO = 12  # simulation: all 2^n patterns up to here, POWER_PATTERNS random beyond
POWER_PATTERNS = 4_096
TIE_TOLERANCE = 1e-9


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


def bca_interval(values, seed: int = 0) -> tuple[float, float]:
    """95 % BCa bootstrap interval of the mean (scipy); a constant sample is its own interval."""
    values = np.asarray(values, float)
    if len(values) < 2 or np.ptp(values) <= TIE_TOLERANCE:
        return float(values.mean()), float(values.mean())
    low, high = _bootstrap(values, "BCa", seed)
    if not (np.isfinite(low) and np.isfinite(high)):  # a degenerate jackknife: no BCa
        low, high = _bootstrap(values, "percentile", seed)
    return float(low), float(high)


def _bootstrap(values: np.ndarray, method: str, seed: int) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate samples are handled by the caller
        result = stats.bootstrap(
            (values,),
            np.mean,
            method=method,
            n_resamples=BOOTSTRAP_RESAMPLES,
            rng=np.random.default_rng(seed),
        )
    return result.confidence_interval


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
    low, high = bca_interval(difference, seed)
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


# ---- power of the rule -------------------------------------------------------------------------
def _sign_patterns(n: int, rng: np.random.Generator) -> np.ndarray:
    """[patterns, n] of ±1: all of them up to POWER_EXACT_UP_TO pairs, else a random set."""
    if n <= POWER_EXACT_UP_TO:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    else:
        bits = rng.integers(0, 2, size=(POWER_PATTERNS, n))
        bits[0] = 0  # the observed pattern is always among them, as in scipy's Monte Carlo
    return (1 - 2 * bits).astype(float)


def sign_flip_p_many(samples: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """The two-sided sign-flip p of each row of `samples` [draws, n] (vectorised; equals
    `permutation_p` when `patterns` are all 2^n of them)."""
    observed = np.abs(samples.mean(axis=1))
    flipped = np.abs(samples @ patterns.T) / samples.shape[1]  # [draws, patterns]
    # the same relative tolerance scipy uses, so that equal means count as "as extreme"
    tolerance = observed * 1e-14 * 2 + 1e-12
    return np.mean(flipped >= (observed - tolerance)[:, None], axis=1)


def simulate_studies(difference, shift: float, draws: int, rng: np.random.Generator):
    """[draws, n] paired differences under the shift model (see the module docstring)."""
    difference = np.asarray(difference, float)
    tied = np.abs(difference) <= TIE_TOLERANCE
    centred = np.where(tied, 0.0, difference - difference[~tied].mean())
    picks = rng.integers(0, len(difference), size=(draws, len(difference)))
    return np.where(tied[picks], 0.0, centred[picks] + shift)


def rejection_rate(difference, shift: float, alpha: float, seed: int = 0) -> tuple[float, float]:
    """(share of simulated studies the rule calls better, their mean true difference)."""
    rng = np.random.default_rng(seed)
    samples = simulate_studies(difference, shift, POWER_DRAWS, rng)
    patterns = _sign_patterns(samples.shape[1], rng)
    p = sign_flip_p_many(samples, patterns)
    better = (p < alpha) & (samples.mean(axis=1) > 0)
    return float(better.mean()), float(samples.mean())


def minimum_detectable_effect(difference, alpha: float, seed: int = 0) -> float | None:
    """The smallest mean difference the rule detects with POWER at level `alpha`, or None when
    no shift within [0, 1] reaches it (see the module docstring). Bisection over the shift of
    the untied pairs; every evaluation reuses the same seeded draws, so the rate is monotone."""
    difference = np.asarray(difference, float)
    untied = np.abs(difference) > TIE_TOLERANCE
    if len(difference) < 2 or not untied.any():
        return None
    if smallest_reachable_p(len(difference), int((~untied).sum())) >= alpha:
        return None
    high = 1.0 / untied.mean()  # the untied pairs' shift that makes the mean difference 1
    if rejection_rate(difference, high, alpha, seed)[0] < POWER:
        return None
    low = 0.0
    for _ in range(14):
        middle = (low + high) / 2
        if rejection_rate(difference, middle, alpha, seed)[0] >= POWER:
            high = middle
        else:
            low = middle
    return rejection_rate(difference, high, alpha, seed)[1]


# ---- the headline verdicts ---------------------------------------------------------------------
@dataclass
class Headline(PairedDifference):
    """The one test per cell and pair, after Holm across the study."""

    tests_in_family: int
    holm_p: float
    alpha_per_test: float
    smallest_reachable_p: float
    minimum_detectable_effect: float | None
    verdict: str
    reason: str

    def sentence(self, candidate: str, base: str, where: str) -> str:
        detail = (
            f"mean AUC difference {self.mean_difference:+.3f}, 95 % BCa CI "
            f"[{self.ci_low:+.3f}, {self.ci_high:+.3f}], {self.wins} wins / {self.ties} ties / "
            f"{self.losses} losses over {self.n_pairs} verdict seeds, permutation p = "
            f"{self.permutation_p:.3g}, Holm-adjusted over {self.tests_in_family} = "
            f"{self.holm_p:.3g}"
        )
        if self.reason:
            detail += f"; {self.reason}"
        return f"{candidate} vs {base}, {where}: {self.verdict} ({detail})."


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


def headline_verdicts(
    tests: list[tuple[list[float], list[float]]], seed: int = 0
) -> list[Headline]:
    """One Headline per (base values, candidate values), Holm-corrected across all of them."""
    described = [describe_paired(base, candidate, seed) for base, candidate in tests]
    adjusted = holm_adjusted([d.permutation_p for d in described])
    m = len(tests)
    alpha = ALPHA / max(m, 1)
    out = []
    for (base, candidate), d, holm_p in zip(tests, described, adjusted, strict=True):
        difference = np.asarray(candidate, float) - np.asarray(base, float)
        floor = smallest_reachable_p(d.n_pairs, d.ties)
        mde = minimum_detectable_effect(difference, alpha, seed)
        if holm_p < ALPHA and d.mean_difference > 0:
            verdict, reason = "better", ""
        elif holm_p < ALPHA and d.mean_difference < 0:
            verdict, reason = "worse", ""
        elif mde is not None:
            verdict = "no detectable difference"
            reason = (
                f"a true mean difference of {mde:.2f} AUC would have been called better with "
                f"at least {POWER:.0%} power (simulated, shift model of these pairs, "
                f"α/{m} = {alpha:.3g})"
            )
        else:
            verdict, reason = "inconclusive", _why_no_power(d, difference, floor, alpha, m, seed)
        out.append(
            Headline(
                **d.to_dict(),
                tests_in_family=m,
                holm_p=holm_p,
                alpha_per_test=alpha,
                smallest_reachable_p=floor,
                minimum_detectable_effect=mde,
                verdict=verdict,
                reason=reason,
            )
        )
    return out


def _why_no_power(
    d: PairedDifference, difference: np.ndarray, floor: float, alpha: float, m: int, seed: int
) -> str:
    if d.ties == d.n_pairs:
        return "every pair tied, so no test can tell the optimizers apart here"
    if floor >= alpha:
        pairs = f"with {d.ties} of {d.n_pairs} pairs tied" if d.ties else f"with {d.n_pairs} pairs"
        return (
            f"{pairs} the exact test cannot go below p = {floor:.3g}, which is not below "
            f"α/{m} = {alpha:.3g}, so no effect size could have been called better or worse"
        )
    untied_share = float(np.mean(np.abs(difference) > TIE_TOLERANCE))
    best = rejection_rate(difference, 1.0 / untied_share, alpha, seed)[0]
    ties = f"{d.ties} of {d.n_pairs} pairs tied and " if d.ties else ""
    return (
        f"with {ties}this spread, studies like this one would call even the largest possible "
        f"difference better in only {best:.0%} of cases at α/{m} = {alpha:.3g} (simulated; "
        "tied pairs — both optimizers at the ceiling or the floor — leave too few that can "
        "differ), so this cell cannot say there is no difference"
    )
