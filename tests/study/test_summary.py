"""Learning-rate choice (tuning runs only), verdict runs, caution, aggregate and verdict text, on
hand-made run records."""

from __future__ import annotations

import numpy as np
import pytest

from dopr_robot.study.config import study_from_dict
from dopr_robot.study.convergence import Curves, budget_trend, cell_verdicts
from dopr_robot.study.paired import describe_paired
from dopr_robot.study.plan import Run, cells, verdict_runs
from dopr_robot.study.records import StudySummary
from dopr_robot.study.report import verdict_lines
from dopr_robot.study.summary import (
    choose_learning_rates,
    lr_at_edge,
    probability_of_improvement,
)

from .conftest import minimal_study


def _records(config, auc_by_optimizer_lr, missing=()):
    cell = cells(config)[0]
    records = []
    for (label, lr), aucs in auc_by_optimizer_lr.items():
        for seed, auc in enumerate(aucs):
            records.append(
                {
                    "cell": cell.key,
                    "optimizer": label,
                    "lr": lr,
                    "seed": seed,
                    "role": "tuning",
                    "validation_auc": None if (label, lr, seed) in missing else auc,
                    "validation": {10: auc, 20: auc},
                }
            )
    return records


def test_learning_rate_is_chosen_on_mean_validation_auc():
    config = study_from_dict(minimal_study())
    key = cells(config)[0].key
    records = _records(
        config,
        {
            ("adamw", 1e-3): [0.2, 0.4],
            ("dopr-adamw", 1e-3): [0.9, 0.1],  # mean 0.5
            ("dopr-adamw", 3e-3): [0.6, 0.6],  # mean 0.6: chosen
        },
    )
    choice = choose_learning_rates(config, records)
    assert choice[(key, "adamw")]["lr"] == 1e-3
    assert choice[(key, "dopr-adamw")]["lr"] == 3e-3
    assert choice[(key, "dopr-adamw")]["grid"] == {1e-3: 0.5, 3e-3: 0.6}
    chosen = verdict_runs(config, {k: v["lr"] for k, v in choice.items()})
    # fresh seeds after the tuning ones, at the chosen lr: none of the choosing networks
    assert Run(cells(config)[0], "dopr-adamw", 3e-3, 2) in chosen
    assert {r.seed for r in chosen} == {2, 3, 4} and len(chosen) == 2 * 3
    assert not {r.seed for r in chosen} & set(config.tuning_seed_list)


def test_verdict_records_do_not_take_part_in_the_choice():
    config = study_from_dict(minimal_study())
    key = cells(config)[0].key
    records = _records(config, {("adamw", 1e-3): [0.2, 0.4], ("dopr-adamw", 1e-3): [0.3, 0.3],
                                ("dopr-adamw", 3e-3): [0.2, 0.2]})  # fmt: skip
    records.append({**records[-1], "seed": 7, "role": "verdict", "validation_auc": 1.0})
    assert choose_learning_rates(config, records)[(key, "dopr-adamw")]["lr"] == 1e-3


def test_ties_go_to_the_first_listed_lr_and_incomplete_lrs_are_not_chosen():
    config = study_from_dict(minimal_study())
    key = cells(config)[0].key
    tied = _records(
        config,
        {
            ("adamw", 1e-3): [0.5, 0.5],
            ("dopr-adamw", 1e-3): [0.5, 0.5],
            ("dopr-adamw", 3e-3): [0.5, 0.5],
        },
    )
    assert choose_learning_rates(config, tied)[(key, "dopr-adamw")]["lr"] == 1e-3
    partial = _records(
        config,
        {
            ("adamw", 1e-3): [0.5, 0.5],
            ("dopr-adamw", 1e-3): [0.1, 0.1],
            ("dopr-adamw", 3e-3): [0.9, 0.9],
        },
        missing={("dopr-adamw", 3e-3, 1)},
    )
    choice = choose_learning_rates(config, partial)[(key, "dopr-adamw")]
    assert choice["lr"] == 1e-3 and choice["grid"][3e-3] is None


def test_aggregate_probability_of_improvement_is_mann_whitney():
    base, candidate = np.array([0.1, 0.5, 0.9]), np.array([0.5, 0.6, 1.0])
    # pairs (c > b): 0.5>0.1; 0.6>0.1,0.5; 1.0>all three = 6, one tie (0.5=0.5) -> 6.5 / 9
    assert probability_of_improvement(base, candidate) == pytest.approx(6.5 / 9)
    assert probability_of_improvement(base, base) == pytest.approx(0.5)


STEPS = [200, 400, 800]


def _comparison(base_curves, candidate_curves, target=0.6):
    """A comparison as summarise writes it, from [seeds, checkpoints] curves and the real rules."""
    curves = Curves(steps=STEPS, base=np.array(base_curves, float),
                    candidate=np.array(candidate_curves, float))  # fmt: skip
    (verdict,) = cell_verdicts([(curves, target)], 0.1, "adamw", "dopr-adamw")
    final = describe_paired(curves.base[:, -1], curves.candidate[:, -1]).to_dict()
    better = verdict.better
    return {
        "base": "adamw",
        "candidate": "dopr-adamw",
        "per_horizon": [],  # descriptive rows: not what these tests read
        "budget": [],
        "auc": {
            **final,
            "verdict": better.verdict,
            "holm_p": better.holm_p,
            "tests_in_family": better.tests_in_family,
            "ci90": list(better.ci90),
            "margin": better.margin,
        },  # fmt: skip
        **verdict.to_dict(),
    }


def _cell_summary(comparison):
    return {
        "key": "balance/flow-c1",
        "label": "balance · flow · standardised inputs",
        "task": "balance",
        "policy": "flow",
        "conditioning": 1.0,
        "horizons": [10, 20],
        "budget_steps": STEPS,
        "tuned": {
            "adamw": {
                "optimizer": "adamw",
                "lr": 0.01,
                "validation_auc": 0.6,
                "lr_at_edge": "largest",
                "lr_grid": [
                    {"lr": 0.003, "validation_auc": 0.5},
                    {"lr": 0.01, "validation_auc": 0.6},
                ],
                "complete": False,
            },
            "dopr-adamw": {
                "optimizer": "dopr-adamw",
                "lr": 0.003,
                "validation_auc": 0.6,
                "lr_at_edge": None,
                "complete": False,
            },  # fmt: skip
        },
        "comparisons": [comparison],
        "robustness": {"adamw": None, "dopr-adamw": None},
        "val_loss_vs_success": {"points": [], "spearman": None},
    }


def test_the_budget_trend_is_signed_and_paired():
    rng = np.random.default_rng(0)

    def noise():  # each run its own episode noise
        return rng.normal(0, 0.02, (10, 3))

    early_lead = _comparison([[0.2, 0.6, 0.9]] * 10 + noise(), [[0.7, 0.9, 0.9]] * 10 + noise())
    assert early_lead["trend"]["words"] == "dopr-adamw ahead first, gap closes"
    reversed_ = _comparison([[0.7, 0.8, 0.9]] * 10 + noise(), [[0.3, 0.8, 0.9]] * 10 + noise())
    assert reversed_["trend"]["words"] == "adamw ahead first, gap closes"
    growing = _comparison([[0.5, 0.5, 0.5]] * 10 + noise(), [[0.6, 0.7, 0.9]] * 10 + noise())
    assert growing["trend"]["words"] == "dopr-adamw ahead first, gap grows"


def test_one_budget_point_has_no_trend():
    rng = np.random.default_rng(2)
    base, candidate = 0.5 + rng.normal(0, 0.02, (10, 1)), 0.8 + rng.normal(0, 0.02, (10, 1))
    curves = Curves(steps=[400], base=base, candidate=candidate)
    trend = budget_trend(curves, "adamw", "dopr-adamw")
    assert trend.words == "dopr-adamw ahead first, one budget point, so no trend"


def test_verdict_lines_say_sooner_and_better_apart():
    rng = np.random.default_rng(1)

    def noise():
        return rng.normal(0, 0.01, (10, 3))

    sooner = _comparison([[0.2, 0.9, 0.9]] * 10 + noise(), [[0.7, 0.9, 0.9]] * 10 + noise())
    rising = _comparison([[0.1, 0.3, 0.6]] * 10 + noise(), [[0.2, 0.5, 0.9]] * 10 + noise())
    summary = {
        "study": "t",
        "tuning_seeds": [0, 1],
        "verdict_seeds": list(range(2, 12)),
        "budget": [0.25, 0.5, 1.0],
        "steps": "800",
        "diverged_runs": [],
        "runs": [],
        "aggregate": [
            {
                "base": "adamw",
                "candidate": "dopr-adamw",
                "cells": 2,
                "probability_of_improvement": 0.7,
                "probability_of_improvement_ci": [0.6, 0.8],
                "mean_auc_difference": 0.15,
                "mean_auc_difference_ci": [0.1, 0.2],
                "verdicts": {"equivalent": 1, "not converged": 1},
                "sooner": {
                    "verdicts": {"dopr-adamw sooner": 2},
                    "speedup_median": 2.0,
                    "speedup_ci": [2.0, 4.0],
                    "speedup_pairs": 20,
                },  # fmt: skip
            }
        ],
        "cells": [_cell_summary(sooner), _cell_summary(rising)],
    }
    text = "\n".join(verdict_lines(StudySummary.model_validate(summary)))
    assert "Sooner — dopr-adamw vs adamw, across 2 cells" in text
    assert "2 × dopr-adamw sooner" in text and "median 2.00× [2.00×, 4.00×]" in text
    assert "1 equivalent, 1 not converged" in text and "paired stratified bootstrap" in text
    assert "= 0.70 [0.60, 0.80]" in text and "+0.150 [+0.100, +0.200]" in text
    assert "Tuning seeds 0–1" in text and "fresh training seeds 2–11" in text
    assert "sooner: **dopr-adamw sooner** (target test AUC 0.60" in text
    assert "better: **equivalent within ±0.1**" in text
    assert "better: **not converged at 800 steps (rerun with more steps)**" in text
    assert "budget: dopr-adamw ahead first, gap closes" in text
    assert (
        "adamw chose the largest lr of its grid in balance · flow · standardised inputs "
        "(tuning AUC 0.50 / **0.60** at lr 0.003 / 0.01)" in text
    )
    assert "dopr-adamw chose" not in text


def _selection(lr, per_seed):
    return {
        "lr": lr,
        "grid": {value: float(np.mean(aucs)) for value, aucs in per_seed.items()},
        "per_seed": per_seed,
    }


def test_lr_at_edge_flags_an_end_only_beyond_one_standard_error():
    clear = {3e-3: [0.2, 0.2, 0.2], 1e-2: [0.4, 0.4, 0.4], 3e-2: [0.5, 0.52, 0.48]}
    assert lr_at_edge(_selection(3e-2, clear)) == "largest"
    low = {3e-3: [0.6, 0.6], 1e-2: [0.4, 0.4], 3e-2: [0.5, 0.5]}
    assert lr_at_edge(_selection(3e-3, low)) == "smallest"
    middle = {3e-3: [0.2, 0.2], 1e-2: [0.6, 0.6], 3e-2: [0.5, 0.5]}
    assert lr_at_edge(_selection(1e-2, middle)) is None
    # 0.89 / 0.89 / 0.88 with seed noise far larger than the gap: not flagged any more
    noisy = {3e-3: [0.95, 0.83], 1e-2: [0.80, 0.98], 3e-2: [0.70, 1.0]}
    assert lr_at_edge(_selection(3e-3, noisy)) is None
    assert lr_at_edge(_selection(3e-3, {3e-3: [1.0, 1.0]})) is None


def test_with_one_tuning_seed_the_margin_is_the_episodes_standard_error():
    one = {3e-3: [0.62], 1e-2: [0.60], 3e-2: [0.40]}
    within = {**_selection(3e-3, one), "episode_error": {3e-3: 0.05, 1e-2: 0.05, 3e-2: 0.05}}
    assert lr_at_edge(within) is None  # 0.02 < hypot(0.05, 0.05)
    beyond = {**_selection(3e-3, {**one, 3e-3: [0.80]}), "episode_error": within["episode_error"]}
    assert lr_at_edge(beyond) == "smallest"


def test_episode_error_of_an_auc_is_binomial_through_the_trapezoid_weights():
    from dopr_robot.study.summary import _episode_error

    class Task:
        horizons, validation_episodes = [1, 2, 4], 16

    # AUC over log2 H at 1, 2, 4: weights 1/4, 1/2, 1/4
    curve = {1: 0.5, 2: 0.5, 4: 0.5}
    expected = np.sqrt((1 / 16 + 1 / 4 + 1 / 16) * 0.25 / 16)
    assert _episode_error([curve], Task) == pytest.approx(expected)
    assert _episode_error([{1: 1.0, 2: 1.0, 4: 0.0}], Task) == 0.0


def test_a_grid_is_extended_at_a_winning_edge_at_most_twice():
    """dopr-adamw's grid [1e-3, 3e-3]: 3e-3 beats 1e-3 by far more than a standard error, so
    9e-3 is added; it wins again, so 0.027; then the limit (two points) stops it. A flat grid
    is not extended."""
    from dopr_robot.study.plan import base_grids, extended_lr
    from dopr_robot.study.summary import extend_grids

    config = study_from_dict(minimal_study())
    key = (cells(config)[0].key, "dopr-adamw")
    grids = base_grids(config)
    rising = {1e-3: [0.2, 0.22], 3e-3: [0.5, 0.52], 9e-3: [0.7, 0.72], 0.027: [0.9, 0.92]}
    added = []
    for _ in range(4):
        aucs = {("adamw", 1e-3): [0.5, 0.5]}
        aucs.update({("dopr-adamw", lr): rising[lr] for lr in grids[key]})
        added += extend_grids(config, choose_learning_rates(config, _records(config, aucs), grids),
                              grids)  # fmt: skip
    assert grids[key] == [1e-3, 3e-3, 9e-3, 0.027] and added == [key, key]
    assert grids[(key[0], "adamw")] == [1e-3]  # one point: no neighbour to beat
    flat = base_grids(config)
    same = {("adamw", 1e-3): [0.5, 0.5], ("dopr-adamw", 1e-3): [1.0, 1.0],
            ("dopr-adamw", 3e-3): [1.0, 1.0]}  # fmt: skip
    assert extend_grids(config, choose_learning_rates(config, _records(config, same), flat),
                        flat) == []  # fmt: skip
    assert extended_lr([3e-3, 1e-2, 3e-2], "smallest") == 9e-4
    assert extended_lr([3e-3, 1e-2, 3e-2], "largest") == 0.09
