"""The paired comparison: scipy's exact tests, Holm, and the descriptive numbers. (The verdict
rules and their claims against known truths: test_convergence.py, test_known_truth.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dopr_robot.study.intervals import difference_interval
from dopr_robot.study.paired import (
    describe_paired,
    holm_adjusted,
    permutation_p,
    smallest_reachable_p,
)


def test_exact_permutation_p_matches_enumeration_and_the_tie_floor():
    # all 2^n sign patterns enumerated by hand
    difference = np.array([0.3, 0.2, 0.2, -0.1])
    patterns = (np.arange(16)[:, None] >> np.arange(4)) & 1
    means = np.abs(((1 - 2 * patterns) * difference).mean(axis=1))
    assert permutation_p(difference) == pytest.approx(np.mean(means >= 0.15 - 1e-12))
    assert permutation_p(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])) == pytest.approx(2 / 64)
    # one tied pair: six seeds, five positive, cannot do better than 2/2^5
    tied = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.0])
    assert permutation_p(tied) == pytest.approx(2 / 32)
    assert smallest_reachable_p(6, 1) == pytest.approx(2 / 32)
    assert permutation_p(np.zeros(5)) == 1.0


def test_descriptive_numbers_come_from_scipy():
    base = [0.5] * 6
    candidate = [0.6, 0.6, 0.5, 0.4, 0.6, 0.5]
    d = describe_paired(base, candidate)
    assert (d.wins, d.ties, d.losses) == (3, 2, 1)
    assert d.sign_test_p == pytest.approx(stats.binomtest(3, 4).pvalue)
    difference = np.array(candidate) - 0.5
    half = stats.t.ppf(0.975, 5) * difference.std(ddof=1) / np.sqrt(6)
    assert (d.ci_low, d.ci_high) == (pytest.approx(difference.mean() - half),
                                     pytest.approx(difference.mean() + half))  # fmt: skip
    # ten ties do not make a zero-width interval: ±(1 - 0.025^(1/10))
    assert difference_interval(np.zeros(10)) == (pytest.approx(-0.3085, abs=1e-4),
                                                 pytest.approx(0.3085, abs=1e-4))  # fmt: skip
    assert describe_paired(base, candidate) == d  # seeded: the same numbers again
    with pytest.raises(ValueError, match="same seeds"):
        describe_paired([0.1, 0.2], [0.3])


def test_holm_adjusts_step_down_and_stays_monotone():
    adjusted = holm_adjusted([0.01, 0.04, 0.03, 0.20])
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert holm_adjusted([0.5, 0.6]) == pytest.approx([1.0, 1.0])
