"""The sooner rule's mechanics: steps to target, censoring, the order-statistic interval."""

from __future__ import annotations

import numpy as np
from scipy import stats

from dopr_robot.study.convergence import Curves, median_interval, sooner, steps_to_target


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
