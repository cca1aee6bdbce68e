"""The paired verdict: direction, interval, counts, sign test and detectable effect."""

from __future__ import annotations

import numpy as np
import pytest

from dopr_robot.study import compare_paired
from dopr_robot.study.paired import (
    permutation_test,
    sign_test,
)


def test_a_clear_improvement_is_better_and_a_clear_loss_is_worse():
    base = [0.50, 0.55, 0.40, 0.60, 0.45, 0.50, 0.52, 0.48]
    better = compare_paired(base, [b + 0.2 + 0.01 * i for i, b in enumerate(base)])
    assert better.verdict == "better" and better.wins == 8 and better.ci_low > 0
    worse = compare_paired(base, [b - 0.2 for b in base])
    assert worse.verdict == "worse" and worse.losses == 8 and worse.ci_high < 0


def test_noise_around_zero_is_no_detectable_difference_with_its_mde():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, 20)
    noise = rng.normal(0, 0.1, 20)
    result = compare_paired(base, base + noise)
    assert result.verdict == "no detectable difference"
    assert result.ci_low < 0 < result.ci_high
    expected = (2.093 + 0.861) * noise.std(ddof=1) / np.sqrt(20)  # t quantiles at 19 df
    assert result.minimum_detectable_effect == pytest.approx(expected, rel=1e-5)
    sentence = result.sentence("dopr-adamw", "adamw", "balance, H = 8")
    assert sentence.startswith("dopr-adamw vs adamw, balance, H = 8: no detectable difference")
    assert "would have been detected with 80 % power" in sentence


def test_counts_ties_and_the_exact_sign_test():
    result = compare_paired([0.5] * 6, [0.6, 0.6, 0.5, 0.4, 0.6, 0.5])
    assert (result.wins, result.ties, result.losses) == (3, 2, 1)
    assert sign_test(3, 1) == pytest.approx(0.625)  # 2 * (1 + 4) / 16
    assert sign_test(10, 0) == pytest.approx(2 / 1024)
    assert sign_test(0, 0) == 1.0


def test_few_seeds_are_reported_as_too_few_and_results_are_reproducible():
    small = compare_paired([0.1, 0.2, 0.3], [0.9, 0.9, 0.9])
    assert small.verdict == "too few seeds to tell"
    again = compare_paired([0.1, 0.2, 0.3], [0.9, 0.9, 0.9])
    assert small == again
    with pytest.raises(ValueError, match="same seeds"):
        compare_paired([0.1, 0.2], [0.3])


def test_exact_permutation_p_and_what_five_seeds_can_show():
    assert permutation_test(np.array([0.1, 0.2, 0.3, 0.4, 0.5])) == pytest.approx(2 / 32)
    assert permutation_test(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])) == pytest.approx(2 / 64)
    # -0.1 flipped against the rest: patterns with |mean| >= observed, counted by hand: 4 of 16
    assert permutation_test(np.array([0.3, 0.2, 0.2, -0.1])) == pytest.approx(4 / 16)
    five = compare_paired([0.2] * 5, [0.9, 0.8, 0.85, 0.95, 0.9])
    assert five.ci_low > 0 and five.verdict == "no detectable difference"
    assert five.minimum_detectable_effect is None
    assert "with 5 paired seeds no exact test can reach p < 0.05" in five.sentence("d", "b", "x")
    six = compare_paired([0.2] * 6, [0.9, 0.8, 0.85, 0.95, 0.9, 0.7])
    assert six.verdict == "better" and six.permutation_p == pytest.approx(2 / 64)
