"""Wilson intervals against published values; AUC and H50 on curves with known answers."""

from __future__ import annotations

import pytest

from dopr_robot.eval import area_under_curve, episode_seeds, h50, wilson_interval


@pytest.mark.parametrize(
    "k, n, low, high",
    [  # Wilson score interval, z = 1.96 (e.g. Newcombe 1998, Table I; statsmodels' "wilson")
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_known_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_auc_and_h50_on_known_curves():
    horizons = [1, 2, 4, 8]
    assert area_under_curve(horizons, [1, 1, 1, 1]) == 1.0
    # success halves per doubling: 1, .5, .25, .125 -> trapezoids over log2 H
    assert area_under_curve(horizons, [1, 0.5, 0.25, 0.125]) == pytest.approx(
        (0.75 + 0.375 + 0.1875) / 3
    )
    assert h50(horizons, [1, 0.5, 0.25, 0.125]) == pytest.approx(2.0)
    assert h50(horizons, [0.8, 0.8, 0.6, 0.2]) == pytest.approx(2 ** (2 + 0.5))
    assert h50(horizons, [1, 0.9, 0.8, 0.7]) is None  # never halves within the sweep
    assert area_under_curve([4], [0.3]) == 0.3


def test_h_at_level_is_absolute_where_h50_is_relative():
    """Two curves with the same shape at different heights share an H50 but not an H@0.5."""
    from dopr_robot.eval.stats import h_at_level

    horizons = [1, 2, 4, 8]
    high, low = [1.0, 0.8, 0.5, 0.4], [0.5, 0.4, 0.25, 0.2]
    assert h50(horizons, high) == pytest.approx(h50(horizons, low))
    assert h_at_level(horizons, high) == pytest.approx(4.0)  # 0.5 at H=4, below after
    assert h_at_level(horizons, [1.0, 0.8, 0.6, 0.2]) == pytest.approx(2 ** (2 + 0.25))
    assert h_at_level(horizons, low) == pytest.approx(1.0)  # 0.5 at H=1, below from H=2 on
    assert h_at_level(horizons, [0.4, 0.3, 0.2, 0.1]) == 0.0  # below the level from the start
    assert h_at_level(horizons, [1.0, 0.9, 0.8, 0.7]) is None  # never below within the sweep


def test_seed_lists_are_disjoint_and_far_from_demonstrations():
    validation, test = episode_seeds("validation", 500), episode_seeds("test", 500)
    assert not set(validation) & set(test)
    assert min(validation + test) >= 1_000_000
    assert episode_seeds("test", 3) == [2_000_000, 2_000_001, 2_000_002]
