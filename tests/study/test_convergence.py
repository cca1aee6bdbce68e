"""The sooner rule's mechanics: steps to target, censoring, the order-statistic interval; the
plateau check with a single budget checkpoint."""

from __future__ import annotations

import numpy as np
from scipy import stats

from dopr_robot.study.convergence import (
    Curves,
    cell_verdicts,
    median_interval,
    plateau,
    sooner,
    steps_to_target,
)


def test_steps_to_target_is_the_first_checkpoint_reaching_it_or_censored():
    assert steps_to_target(np.array([0.1, 0.5, 0.9]), [200, 400, 800], 0.5) == 400
    assert steps_to_target(np.array([0.1, 0.2, 0.3]), [200, 400, 800], 0.5) is None


def test_a_censored_base_is_a_speedup_above_any_number():
    base = np.tile([0.1, 0.2, 0.3], (10, 1))  # never reaches 0.5
    candidate = np.tile([0.6, 0.9, 0.9], (10, 1))  # reaches it at the first checkpoint
    result = sooner(Curves(steps=[200, 400, 800], base=base, candidate=candidate), 0.5)
    assert result.steps_base == [None] * 10 and result.steps_candidate == [200] * 10
    assert result.first_candidate == 10 and result.p == stats.binomtest(10, 10).pvalue
    assert result.speedup_median == np.inf
    both_never = sooner(Curves(steps=[200, 400, 800], base=base, candidate=base), 0.5)
    assert both_never.ties == 10 and both_never.speedup_pairs == 0


def test_the_median_interval_uses_binomial_ranks_and_needs_six_values():
    values = np.arange(1.0, 11.0)  # n = 10: ranks 2 and 9 cover the median with 97.9 %
    assert median_interval(values) == (2.0, 9.0)
    assert median_interval(np.arange(5.0)) is None


def test_one_budget_checkpoint_allows_no_plateau_check_so_better_is_not_asked():
    """budget = [1.0]: nothing to compare the last checkpoint with. Not plateaued, so the cell
    reads "not converged" (the rule unchanged), and there is no change to report (it was NaN)."""
    base = np.tile([0.5], (10, 1)) + np.linspace(0, 0.01, 10)[:, None]
    candidate = base + 0.2
    check = plateau(base, [400], 0.1)
    assert not check.checked and not check.plateaued and not check.at_ceiling
    assert check.steps == (400, 400) and check.change is None and check.ci is None
    (verdict,) = cell_verdicts([(Curves(steps=[400], base=base, candidate=candidate), 0.4)], 0.1,
                               "adamw", "dopr-adamw")  # fmt: skip
    assert not verdict.better.converged and verdict.better.tests_in_family == 0
    assert verdict.better.verdict == "not converged at 400 steps (rerun with more steps)"
    assert plateau(np.hstack([base, base]), [200, 400], 0.1).checked
