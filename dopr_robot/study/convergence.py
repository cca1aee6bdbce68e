"""Two answers about trained policies, kept apart: "sooner" (who reaches a target first) and
"better" (who is ahead once both have stopped improving). Each rule's claim is checked against
synthetic studies with a known answer in `tests/study/test_known_truth.py`.

Input per cell and optimizer: the verdict metric (test AUC over H) of each verdict seed at each
budget checkpoint, seeds paired across optimizers (same data order, noise and initial weights).

**Sooner** (`sooner`), AlgoPerf-style time to target:
- the target is fixed before any verdict run is looked at, from the tuning runs: `TARGET_SHARE`
  (80 %) of the base optimizer's validation AUC at its chosen lr. A cell whose base reaches less
  than `MIN_TARGET` in tuning has no target ("the base does not learn this cell");
- a run's steps to target is the first checkpoint at which its test AUC reaches the target; a
  run that never does is censored (it needs more than the last checkpoint);
- per seed, the run that got there at an earlier checkpoint is first (censored counts as later
  than any checkpoint; same checkpoint or both censored is a tie). The exact two-sided sign test
  over the untied seeds gives p, Holm-corrected across the study's sooner tests;
- the speed-up of a seed is steps_base / steps_candidate. Its median comes with the
  distribution-free interval from order statistics (the binomial(n, ½) ranks that cover the
  median with ≥ 95 %), which stays valid under censoring: a censored base is a speed-up above
  any number, a censored candidate one below any; only seeds where both are censored drop out.
  Checkpoints are coarse, so speed-ups are ratios of checkpoint steps.

**Plateau** (`plateau`): an optimizer has stopped improving at the budget when the 95 % interval
(`intervals.difference_interval`, paired over seeds) of its change over the last two
checkpoints lies within ±δ (the study's `margin`). Seeds all at the ceiling (AUC 1 at both) are
not taken as a plateau: ten seeds at 1 cannot exclude a share of seeds that fail and still
improve (the known-truth test of a seed that either learns or not showed it).

**Better** (`better`), only where both optimizers have plateaued: the exact sign-flip test of
the mean paired final AUC difference, Holm-corrected across the converged cells
(`paired.permutation_p`, `paired.holm_adjusted`): "better" / "worse" below α. Otherwise the
equivalence test (TOST at α: the 90 % interval of the mean difference within ±δ) says
"equivalent within ±δ", else "inconclusive". A cell where either optimizer is still changing
reads "not converged at N steps" and takes no part in the Holm family. A cell where every seed
of both optimizers ends at AUC 1 (or 0) says so ("at the ceiling" / "at the floor") instead:
no test can separate them there.

**Budget trend** (`budget_trend`), signed and paired: the per-seed change of the paired
difference from the first to the last checkpoint, with its 95 % interval, worded by direction:
who was ahead first, and whether the gap closes, grows or stays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from .intervals import TIE_TOLERANCE, difference_interval
from .paired import ALPHA, holm_adjusted, permutation_p

TARGET_SHARE = 0.8
MIN_TARGET = 0.1


@dataclass(frozen=True, kw_only=True)
class Curves:
    """One cell's verdict-seed curves: `values[optimizer]` is [seeds, checkpoints]."""

    steps: list[int]
    base: np.ndarray
    candidate: np.ndarray

    def __post_init__(self):
        if self.base.shape != self.candidate.shape or self.base.shape[1] != len(self.steps):
            raise ValueError("base and candidate need [seeds, checkpoints] of the same shape")


# ---- sooner ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Sooner:
    target: float | None
    steps_base: list[int | None]  # None: censored (not reached by the last checkpoint)
    steps_candidate: list[int | None]
    first_base: int
    first_candidate: int
    ties: int
    p: float
    speedup_median: float | None  # steps_base / steps_candidate; inf: base censored
    speedup_ci: tuple[float, float] | None
    speedup_pairs: int
    holm_p: float = 1.0
    verdict: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def target_from_tuning(base_validation_auc: float | None) -> float | None:
    if base_validation_auc is None or base_validation_auc * TARGET_SHARE < MIN_TARGET:
        return None
    return float(TARGET_SHARE * base_validation_auc)


def steps_to_target(curve: np.ndarray, steps: list[int], target: float) -> int | None:
    reached = np.flatnonzero(np.asarray(curve) >= target - TIE_TOLERANCE)
    return int(steps[reached[0]]) if len(reached) else None


def median_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free interval for the median from order statistics (binomial(n, ½)); None
    when there are too few values for one (n < 6 at 95 %)."""
    x = np.sort(values)
    n = len(x)
    j = int(stats.binom.ppf((1 - level) / 2, n, 0.5))  # P(Bin <= j-1) <= (1-level)/2
    while j > 0 and stats.binom.cdf(j - 1, n, 0.5) > (1 - level) / 2:
        j -= 1
    if j == 0:
        return None
    return float(x[j - 1]), float(x[n - j])


def sooner(curves: Curves, target: float | None) -> Sooner:
    n = curves.base.shape[0]
    if target is None:
        return Sooner(target=None, steps_base=[None] * n, steps_candidate=[None] * n,
                      first_base=0, first_candidate=0, ties=n, p=1.0, speedup_median=None,
                      speedup_ci=None, speedup_pairs=0)  # fmt: skip
    base = [steps_to_target(c, curves.steps, target) for c in curves.base]
    cand = [steps_to_target(c, curves.steps, target) for c in curves.candidate]
    late = np.inf
    b = np.array([late if s is None else s for s in base], float)
    c = np.array([late if s is None else s for s in cand], float)
    first_candidate, first_base = int(np.sum(c < b)), int(np.sum(b < c))
    untied = first_base + first_candidate
    p = float(stats.binomtest(first_candidate, untied).pvalue) if untied else 1.0
    known = ~(np.isinf(b) & np.isinf(c))
    b, c = b[known], c[known]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(np.isinf(b), np.inf, np.where(np.isinf(c), 0.0, b / c))
    median = float(np.median(ratios)) if len(ratios) else None
    interval = median_interval(ratios) if len(ratios) else None  # None: too few seeds
    return Sooner(target=float(target), steps_base=base, steps_candidate=cand,
                  first_base=first_base, first_candidate=first_candidate, ties=n - untied, p=p,
                  speedup_median=median, speedup_ci=interval,
                  speedup_pairs=int(known.sum()))  # fmt: skip


def sooner_verdicts(results: list[Sooner], base: str, candidate: str) -> list[Sooner]:
    """Holm across the study's sooner tests, then the words."""
    tested = [i for i, r in enumerate(results) if r.target is not None]
    adjusted = holm_adjusted([results[i].p for i in tested]) if tested else []
    holm = dict(zip(tested, adjusted, strict=True))
    out = []
    for i, r in enumerate(results):
        if r.target is None:
            words = "no target (the base does not learn this cell in tuning)"
        elif r.first_base + r.first_candidate == 0:
            words = "tied (every seed reached the target at the same checkpoint, or neither did)"
        elif holm[i] < ALPHA:
            words = f"{candidate} sooner" if r.first_candidate > r.first_base else f"{base} sooner"
        else:
            words = "neither shown sooner"
        out.append(Sooner(**{**asdict(r), "holm_p": holm.get(i, 1.0), "verdict": words}))
    return out


# ---- plateau and better ------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Plateau:
    steps: tuple[int, int]  # (last but one, last) checkpoint; (last, last) with one checkpoint
    change: float | None  # None: one checkpoint, no change to measure (older files: NaN)
    ci: tuple[float, float] | None
    margin: float
    plateaued: bool
    at_ceiling: bool

    @property
    def checked(self) -> bool:
        """False when the budget had one checkpoint: no plateau check was possible. Read from
        the steps, so a file written when this case said change NaN answers the same."""
        return self.steps[0] != self.steps[1]

    def to_dict(self) -> dict:
        return asdict(self)


def plateau(curves: np.ndarray, steps: list[int], margin: float) -> Plateau:
    """Has this optimizer stopped improving at the last checkpoint? (see the module docstring)
    With one checkpoint there is nothing to compare: not plateaued, so "better" is not asked."""
    if len(steps) < 2:
        return Plateau(steps=(steps[-1], steps[-1]), change=None, ci=None, margin=margin,
                       plateaued=False, at_ceiling=False)  # fmt: skip
    change = curves[:, -1] - curves[:, -2]
    ceiling = bool(np.all(np.minimum(curves[:, -1], curves[:, -2]) >= 1 - TIE_TOLERANCE))
    low, high = difference_interval(change)
    return Plateau(steps=(steps[-2], steps[-1]), change=float(change.mean()), ci=(low, high),
                   margin=margin, plateaued=-margin <= low and high <= margin,
                   at_ceiling=ceiling)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Better:
    converged: bool
    mean_difference: float
    ci90: tuple[float, float]
    p: float | None
    holm_p: float | None
    margin: float
    verdict: str
    tests_in_family: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def better_verdicts(
    finals: list[tuple[np.ndarray, np.ndarray]], converged: list[bool], margin: float,
    steps: list[int],
) -> list[Better]:  # fmt: skip
    """Per cell: base and candidate final AUC per seed, whether both plateaued, the last step."""
    family = [i for i, ok in enumerate(converged) if ok]
    p_values = {i: permutation_p(finals[i][1] - finals[i][0]) for i in family}
    adjusted = dict(zip(family, holm_adjusted([p_values[i] for i in family]), strict=True))
    out = []
    for i, (base, candidate) in enumerate(finals):
        difference = np.asarray(candidate, float) - np.asarray(base, float)
        ci90 = difference_interval(difference, level=1 - 2 * ALPHA)
        mean = float(difference.mean())
        both = np.concatenate([np.asarray(base, float), np.asarray(candidate, float)])
        if np.all(both >= 1 - TIE_TOLERANCE) or np.all(both <= TIE_TOLERANCE):
            where = "ceiling" if both[0] >= 0.5 else "floor"
            verdict = (f"at the {where}: every seed of both scores {both[0]:.0f} at {steps[i]} "
                       "steps, so this cell cannot separate them")  # fmt: skip
        elif i not in adjusted:
            verdict = f"not converged at {steps[i]} steps (rerun with more steps)"
        elif adjusted[i] < ALPHA:
            verdict = "better" if mean > 0 else "worse"
        elif -margin <= ci90[0] and ci90[1] <= margin:
            verdict = f"equivalent within ±{margin:g}"
        else:
            verdict = "inconclusive"
        out.append(Better(converged=i in adjusted, mean_difference=mean, ci90=ci90,
                          p=p_values.get(i), holm_p=adjusted.get(i), margin=margin,
                          verdict=verdict, tests_in_family=len(family)))  # fmt: skip
    return out


# ---- the budget trend --------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Trend:
    first_step: int
    last_step: int
    first_difference: float
    first_ci: tuple[float, float]
    change: float
    change_ci: tuple[float, float]
    words: str

    def to_dict(self) -> dict:
        return asdict(self)


def budget_trend(curves: Curves, base: str, candidate: str) -> Trend:
    """Who is ahead at the first checkpoint, and whether the gap closes by the last one."""
    difference = curves.candidate - curves.base  # [seeds, checkpoints]
    first_ci = difference_interval(difference[:, 0])
    change = difference[:, -1] - difference[:, 0]
    change_ci = difference_interval(change)
    lead = float(difference[:, 0].mean())
    if first_ci[0] > 0:
        ahead = f"{candidate} ahead first"
    elif first_ci[1] < 0:
        ahead = f"{base} ahead first"
    else:
        ahead = "neither ahead first"
    toward_zero = change_ci[1] < 0 if lead > 0 else change_ci[0] > 0
    away = change_ci[0] > 0 if lead > 0 else change_ci[1] < 0
    if len(curves.steps) == 1:  # a gap cannot move without a second checkpoint
        gap = "one budget point, so no trend"
    elif ahead.startswith("neither"):
        gap = "gap opens" if (change_ci[0] > 0 or change_ci[1] < 0) else "gap stays"
    else:
        gap = "gap closes" if toward_zero else ("gap grows" if away else "gap stays")
    return Trend(first_step=curves.steps[0], last_step=curves.steps[-1], first_difference=lead,
                 first_ci=first_ci, change=float(change.mean()), change_ci=change_ci,
                 words=f"{ahead}, {gap}")  # fmt: skip


# ---- the whole rule, over a study's cells --------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CellVerdict:
    sooner: Sooner
    plateau_base: Plateau
    plateau_candidate: Plateau
    better: Better
    trend: Trend

    def to_dict(self) -> dict:
        return {
            "sooner": self.sooner.to_dict(),
            "plateau": {"base": self.plateau_base.to_dict(),
                        "candidate": self.plateau_candidate.to_dict()},
            "better": self.better.to_dict(),
            "trend": self.trend.to_dict(),
        }  # fmt: skip


def cell_verdicts(
    cells: list[tuple[Curves, float | None]], margin: float, base: str, candidate: str
) -> list[CellVerdict]:
    """Sooner, plateau and better for every cell of one pair, each family Holm-corrected."""
    soon = sooner_verdicts([sooner(c, target) for c, target in cells], base, candidate)
    plateaus = [(plateau(c.base, c.steps, margin), plateau(c.candidate, c.steps, margin))
                for c, _ in cells]  # fmt: skip
    finals = [(c.base[:, -1], c.candidate[:, -1]) for c, _ in cells]
    converged = [b.plateaued and k.plateaued for b, k in plateaus]
    better = better_verdicts(finals, converged, margin, [c.steps[-1] for c, _ in cells])
    return [
        CellVerdict(
            sooner=s,
            plateau_base=pb,
            plateau_candidate=pc,
            better=b,
            trend=budget_trend(c, base, candidate),
        )  # fmt: skip
        for s, (pb, pc), b, (c, _) in zip(soon, plateaus, better, cells, strict=True)
    ]
