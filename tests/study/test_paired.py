"""The paired verdict: scipy's tests, Holm across cells, and power claims true of the rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dopr_robot.study.paired import (
    ALPHA,
    POWER,
    _sign_patterns,
    bca_interval,
    describe_paired,
    headline_verdicts,
    holm_adjusted,
    permutation_p,
    rejection_rate,
    sign_flip_p_many,
    simulate_studies,
    smallest_reachable_p,
)


def test_a_clear_improvement_is_better_and_a_clear_loss_is_worse():
    base = [0.50, 0.55, 0.40, 0.60, 0.45, 0.50, 0.52, 0.48, 0.51, 0.47]
    better, worse = headline_verdicts(
        [
            (base, [b + 0.2 + 0.01 * i for i, b in enumerate(base)]),
            (base, [b - 0.2 - 0.01 * i for i, b in enumerate(base)]),
        ]
    )
    assert better.verdict == "better" and better.wins == 10 and better.ci_low > 0
    assert worse.verdict == "worse" and worse.losses == 10 and worse.ci_high < 0
    assert better.permutation_p == pytest.approx(2 / 1024)
    assert better.holm_p == pytest.approx(2 * 2 / 1024)  # Holm over two tests


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


def test_the_vectorised_p_used_for_power_equals_scipy():
    rng = np.random.default_rng(3)
    samples = rng.normal(0.1, 0.2, size=(20, 8))
    samples[:, 0] = 0.0  # ties
    patterns = _sign_patterns(8, rng)
    fast = sign_flip_p_many(samples, patterns)
    slow = [permutation_p(row) for row in samples]
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


def test_descriptive_numbers_come_from_scipy():
    base = [0.5] * 6
    candidate = [0.6, 0.6, 0.5, 0.4, 0.6, 0.5]
    d = describe_paired(base, candidate)
    assert (d.wins, d.ties, d.losses) == (3, 2, 1)
    assert d.sign_test_p == pytest.approx(stats.binomtest(3, 4).pvalue)
    low, high = bca_interval(np.array(candidate) - 0.5)
    assert (d.ci_low, d.ci_high) == (low, high) and low < d.mean_difference < high
    assert bca_interval([0.2, 0.2, 0.2]) == (pytest.approx(0.2), pytest.approx(0.2))
    assert describe_paired(base, candidate) == d  # seeded: the same numbers again
    with pytest.raises(ValueError, match="same seeds"):
        describe_paired([0.1, 0.2], [0.3])


def test_holm_adjusts_step_down_and_stays_monotone():
    adjusted = holm_adjusted([0.01, 0.04, 0.03, 0.20])
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert holm_adjusted([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_a_tie_that_makes_better_impossible_is_inconclusive_never_no_difference():
    """The README once printed "a difference of 0.58 would have been detected with 80 % power"
    for six seeds with one tie, where better was impossible at any effect size."""
    base = [0.2, 0.4, 0.5, 0.3, 0.6, 1.0]
    candidate = [0.9, 0.8, 0.9, 0.9, 0.95, 1.0]  # five wins, one tie (both perfect)
    (result,) = headline_verdicts([(base, candidate)])
    assert result.ties == 1 and result.smallest_reachable_p == pytest.approx(2 / 32)
    assert result.verdict == "inconclusive" and result.minimum_detectable_effect is None
    assert "cannot go below p = 0.0625" in result.sentence("dopr", "adamw", "cell")
    two = headline_verdicts([([0.1, 0.2], [0.9, 0.9])])[0]
    assert two.verdict == "inconclusive" and "with 2 pairs" in two.reason


@pytest.mark.parametrize(
    "observed",
    [
        # ten seeds, spread 0.15, no ties
        np.array([0.05, -0.10, 0.20, 0.02, -0.05, 0.12, 0.00 + 0.01, -0.02, 0.08, 0.15]),
        # twelve seeds, three tied at the ceiling
        np.array([0.0, 0.0, 0.0, 0.3, -0.2, 0.1, 0.25, -0.05, 0.4, 0.05, -0.15, 0.2]),
    ],
)
def test_a_true_effect_at_the_printed_mde_is_called_better_at_the_stated_rate(observed):
    """Simulate studies whose true mean difference is the printed MDE (fresh seeds, not the ones
    the MDE was found with) and apply the rule: about 80 % must come out better."""
    m = 3  # three cells in the family: the MDE is at alpha / 3
    base = np.full(len(observed), 0.5)
    headlines = headline_verdicts([(base, base + observed)] * m)
    mde = headlines[0].minimum_detectable_effect
    assert headlines[0].verdict == "no detectable difference" and mde is not None
    assert f"{mde:.2f} AUC" in headlines[0].reason
    untied = np.abs(observed) > 1e-9
    shift = mde / untied.mean()  # the untied pairs' shift that gives mean difference mde
    rates = [rejection_rate(observed, shift, ALPHA / m, seed=s) for s in (11, 12, 13)]
    assert np.mean([r for r, _ in rates]) == pytest.approx(POWER, abs=0.04)
    assert np.mean([mean for _, mean in rates]) == pytest.approx(mde, abs=0.02)
    # and at half the MDE the rule is clearly weaker: the MDE is not an over-claim
    assert rejection_rate(observed, shift / 2, ALPHA / m, seed=11)[0] < POWER - 0.2


def test_simulated_studies_keep_tied_pairs_tied_and_shift_the_rest():
    observed = np.array([0.0, 0.0, 0.2, -0.2, 0.1, -0.1])
    samples = simulate_studies(observed, 0.5, 2000, np.random.default_rng(0))
    tied_share = np.mean(samples == 0.0)
    assert tied_share == pytest.approx(2 / 6, abs=0.02)
    assert samples[samples != 0].mean() == pytest.approx(0.5, abs=0.01)
