"""Learning-rate choice, tuned runs, bands and verdict text, on hand-made run records."""

from __future__ import annotations

from dopr_robot.study.config import study_from_dict
from dopr_robot.study.plan import Run, cells
from dopr_robot.study.report import verdict_lines
from dopr_robot.study.summary import (
    bootstrap_band,
    choose_learning_rates,
    lr_at_edge,
    tuned_runs,
)
from tests.study.test_config import _minimal


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
                    "validation_auc": None if (label, lr, seed) in missing else auc,
                }
            )
    return records


def test_learning_rate_is_chosen_on_mean_validation_auc():
    config = study_from_dict(_minimal())
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
    chosen = tuned_runs(config, choice)
    assert Run(cells(config)[0], "dopr-adamw", 3e-3, 1) in chosen and len(chosen) == 4


def test_ties_go_to_the_first_listed_lr_and_incomplete_lrs_are_not_chosen():
    config = study_from_dict(_minimal())
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


def test_bootstrap_band_brackets_the_mean_and_is_seeded():
    values = [0.1, 0.5, 0.3, 0.9, 0.4]
    low, high = bootstrap_band(values)
    assert low < sum(values) / len(values) < high
    assert bootstrap_band(values) == (low, high)
    assert bootstrap_band([0.5]) == (0.5, 0.5)


def test_verdict_lines_count_and_name_every_comparison():
    row = {
        "n_pairs": 6,
        "mean_base": 0.5,
        "mean_dopr": 0.5,
        "mean_difference": 0.0,
        "ci_low": -0.1,
        "ci_high": 0.1,
        "wins": 2,
        "ties": 1,
        "losses": 2,
        "sign_test_p": 1.0,
        "permutation_p": 1.0,
        "minimum_detectable_effect": 0.2,
        "verdict": "no detectable difference",
    }
    better = {**row, "ci_low": 0.05, "mean_difference": 0.2, "verdict": "better"}
    summary = {
        "diverged_runs": [],
        "cells": [
            {
                "label": "balance · flow · standardised inputs",
                "tuned": {
                    "adamw": {
                        "lr": 0.01,
                        "lr_at_edge": "largest",
                        "lr_grid": [
                            {"lr": 0.003, "validation_auc": 0.5},
                            {"lr": 0.01, "validation_auc": 0.6},
                        ],
                    },
                    "dopr-adamw": {"lr": 0.003, "lr_at_edge": None},
                },
                "comparisons": [
                    {
                        "base": "adamw",
                        "candidate": "dopr-adamw",
                        "auc": row,
                        "per_horizon": [
                            {**row, "task_horizon": 10},
                            {**better, "task_horizon": 20},
                        ],
                    }
                ],
            }
        ],
    }
    lines = verdict_lines(summary)
    assert "1 better, 0 worse, 1 no detectable difference, 0 too few seeds to tell" in lines[0]
    text = "\n".join(lines)
    assert "H = 20: better" in text
    assert "a difference of 0.20 would have been detected with 80 % power" in text
    assert (
        "adamw chose the largest lr of its grid in balance · flow · standardised inputs "
        "(validation AUC 0.50 / **0.60** at lr 0.003 / 0.01)" in text
    )
    assert "dopr-adamw chose" not in text


def test_lr_at_edge_flags_only_a_strict_best_at_an_end():
    assert lr_at_edge({"lr": 3e-2, "grid": {3e-3: 0.2, 1e-2: 0.4, 3e-2: 0.5}}) == "largest"
    assert lr_at_edge({"lr": 3e-3, "grid": {3e-3: 0.6, 1e-2: 0.4, 3e-2: 0.5}}) == "smallest"
    assert lr_at_edge({"lr": 1e-2, "grid": {3e-3: 0.2, 1e-2: 0.6, 3e-2: 0.5}}) is None
    assert lr_at_edge({"lr": 3e-3, "grid": {3e-3: 1.0, 1e-2: 1.0, 3e-2: 1.0}}) is None  # a tie
    assert lr_at_edge({"lr": 3e-3, "grid": {3e-3: 1.0}}) is None
