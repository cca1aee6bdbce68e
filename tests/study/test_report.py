"""report.py: the verdict's sentences, the tables and the wall-time lines, written from a small
hand-built summary (the shape `summarise` gives), with no study run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dopr_robot.study.convergence import Curves, cell_verdicts
from dopr_robot.study.records import Cell, Comparison, StudySummary
from dopr_robot.study.report import (
    aggregate_lines,
    better_sentence,
    cell_table,
    recorded_versions,
    sooner_sentence,
    stage_breakdown,
    trend_sentence,
    verdict_lines,
    wall_time,
)
from dopr_robot.study.summary import verdict_kind

LABEL = "balance · flow · standardised inputs"


def tuned(label, lr, grid, *, complete=True, edge=None, h_at_half=13.25):
    """One optimizer's row of a cell: chosen `lr`, `grid` = {lr: validation AUC}."""
    return {
        "optimizer": label,
        "lr": lr,
        "validation_auc": grid.get(lr),
        "lr_grid": [{"lr": x, "validation_auc": auc} for x, auc in grid.items()],
        "lr_at_edge": edge,
        "complete": complete,
        "success_per_seed": {"10": [1.0, 0.5, 0.75], "20": [0.25, 0.0, 0.5]},
        "success": {"10": 0.75, "20": 0.25},
        "band": {"10": [0.5, 1.0], "20": [0.0, 0.5]},
        "auc_per_seed": [0.625, 0.25, 0.625],
        "auc": 0.5,
        "h_at_half": h_at_half,
        "budget_auc_per_seed": {"150": [0.5, 0.25, 0.5], "300": [0.625, 0.25, 0.625]},
        "budget_auc": {"150": 0.4167, "300": 0.5},
        "budget_band": {"150": [0.1, 0.7], "300": [0.2, 0.8]},
        "best_val_loss": 0.41926,
        "final_val_loss": 1e-4,
        "diverged": 0,
        "test_dirs": [f"runs/balance/flow-c1/{label}-lr{lr:g}-s2/eval/test"],
    }


def paired(mean_base=0.375, mean_candidate=0.65625, **changes):
    """The descriptive numbers of a paired comparison (`paired.describe_paired`'s fields)."""
    return {
        "n_pairs": 3,
        "mean_base": mean_base,
        "mean_candidate": mean_candidate,
        "mean_difference": mean_candidate - mean_base,
        "ci_low": -0.1,
        "ci_high": 0.6,
        "wins": 2,
        "ties": 1,
        "losses": 0,
        "sign_test_p": 0.5,
        "permutation_p": 0.25,
        **changes,
    }


def plateau(change, ci, steps=(150, 300)):
    return {"steps": list(steps), "change": change, "ci": ci, "margin": 0.1,
            "plateaued": True, "at_ceiling": False}  # fmt: skip


def comparison_values(auc_verdict="better (Holm p = 0.02)", sooner_target=0.2, holm_p=0.0123):
    """One pair in one cell as summary.json holds it (every field `Comparison` needs)."""
    better = {"converged": holm_p is not None, "mean_difference": 0.28125, "ci90": [0.0839, 0.4786],
              "p": 0.25, "holm_p": holm_p, "margin": 0.1, "verdict": auc_verdict,
              "tests_in_family": 2}  # fmt: skip
    return {
        "base": "adamw",
        "candidate": "dopr-adamw",
        "per_horizon": [
            {"task_horizon": 10, **paired(0.5, 0.75)},
            {"task_horizon": 20, **paired(0.25, 0.5)},
        ],
        "budget": [{"step": 150, **paired(0.25, 0.5)}, {"step": 300, **paired()}],
        "sooner": {
            "verdict": "sooner" if sooner_target is not None else "no target (base never left 0)",
            "target": sooner_target,
            "first_candidate": 2,
            "first_base": 0,
            "ties": 1,
            "steps_base": [300, 300, 150],
            "steps_candidate": [150, 150, 150],
            "p": 0.25,
            "holm_p": 0.5,
            "speedup_median": 1.5,
            "speedup_ci": [1.0, float("inf")],
            "speedup_pairs": 3,
        },
        "auc": {
            **paired(mean_difference=0.28125),
            "verdict": auc_verdict,
            "ci90": [0.0839, 0.4786],
            "margin": 0.1,
            "tests_in_family": 2,
            "holm_p": holm_p,
        },
        "plateau": {
            "base": plateau(0.0625, [-0.05, 0.08]),
            "candidate": plateau(-0.01, [-0.09, 0.07]),
        },
        "better": better,
        "trend": {
            "words": "candidate ahead first, gap closes",
            "first_difference": 0.25,
            "first_ci": [0.1, 0.4],
            "first_step": 150,
            "change": -0.125,
            "change_ci": [-0.3, 0.05],
            "last_step": 300,
        },
    }


def comparison(*args, **kwargs) -> Comparison:
    return Comparison.model_validate(comparison_values(*args, **kwargs))


def summary_values(**changes) -> dict:
    """A one-cell summary as summary.json holds it, with `changes` set over it."""
    cell = {
        "key": "balance/flow-c1",
        "label": LABEL,
        "task": "balance",
        "policy": "flow",
        "conditioning": 1.0,
        "horizons": [10, 20],
        "budget_steps": [150, 300],
        "tuned": {
            "adamw": tuned("adamw", 1e-3, {1e-3: 0.4}),
            "dopr-adamw": tuned("dopr-adamw", 3e-3, {1e-3: 0.4, 3e-3: 0.6}),
        },
        "comparisons": [comparison_values()],
        "robustness": {"adamw": {"10": 0.5, "20": 0.25}, "dopr-adamw": None},
        "val_loss_vs_success": {"points": [], "spearman": None},
    }
    values = {
        "study": "t",
        "tuning_seeds": [0, 1],
        "verdict_seeds": [2, 3, 4],
        "budget": [0.5, 1.0],
        "steps": "300",
        "cells": [cell],
        "diverged_runs": [],
        "grid_extensions": [],
        "aggregate": [],
        "runs": [],
    }
    values.update(changes)
    return values


def summary(**changes) -> StudySummary:
    return StudySummary.model_validate(summary_values(**changes))


def test_a_verdict_is_counted_by_its_kind():
    kinds = [
        verdict_kind(comparison(text).auc.verdict)
        for text in ("better (Holm p = 0.02)", "not converged at 300 steps (rerun with more steps)")
    ]
    assert kinds == ["better", "not converged"]


def test_the_verdict_lines_name_the_tuning_and_the_fresh_verdict_seeds():
    text = "\n".join(verdict_lines(summary()))
    assert "Tuning seeds 0–1 chose each optimizer's lr" in text
    assert "fresh training seeds 2–4 at those lrs" in text
    assert "Every run trained 300 steps." in text
    one = "\n".join(verdict_lines(summary(tuning_seeds=[0], verdict_seeds=[1, 2])))
    assert "Tuning seeds 0 chose" in one and "fresh training seeds 1–2" in one


def test_each_cell_and_pair_gets_its_three_sentences_in_order():
    lines = verdict_lines(summary())
    first = lines.index(f"- **{LABEL}**: " + sooner_sentence(comparison()))
    assert lines[first + 1] == "  - " + better_sentence(comparison())
    assert lines[first + 2] == "  - " + trend_sentence(comparison())


def test_a_cell_without_comparisons_is_said_to_be_incomplete():
    incomplete = summary_values()
    incomplete["cells"][0]["comparisons"] = []
    lines = verdict_lines(StudySummary.model_validate(incomplete))
    assert f"- **{LABEL}**: incomplete (some runs are not evaluated yet)." in lines
    assert not any(line.startswith("  - better") for line in lines)


def _cautions(values: dict) -> list[str]:
    lines = verdict_lines(StudySummary.model_validate(values))
    return [line for line in lines if "Caution" in line]


def test_an_lr_at_the_edge_of_its_grid_is_a_caution_with_the_tuning_curve():
    assert not any("Caution" in line for line in verdict_lines(summary()))
    edge = summary_values()
    edge["cells"][0]["tuned"]["dopr-adamw"]["lr_at_edge"] = "largest"
    (caution,) = _cautions(edge)
    assert (
        f"dopr-adamw chose the largest lr of its grid in {LABEL} "
        "(tuning AUC 0.40 / **0.60** at lr 0.001 / 0.003)" in caution
    )
    assert "by more than one standard error over tuning seeds" in caution
    edge["tuning_seeds"] = [0]  # one seed: seed noise is not allowed for, and the line says so
    (caution,) = _cautions(edge)
    assert "with one tuning seed, seed noise cannot be estimated" in caution


def test_grid_extensions_tuning_spreads_and_diverged_runs_are_reported():
    extended = summary(
        grid_extensions=[{"optimizer": "adamw", "cell": "balance/flow-c1", "added": [0.009]}],
        diverged_runs=["runs/a", "runs/b"],
    )
    text = "\n".join(verdict_lines(extended))
    assert "**Grids extended**" in text and f"adamw in {LABEL} (added lr 0.009)" in text
    # only dopr-adamw has two known points on its tuning curve: max − min = 0.2
    assert "validation AUC over each grid" in text and f"{LABEL} dopr-adamw 0.20." in text
    assert f"{LABEL} adamw" not in text
    assert "Diverged runs (counted as failing every episode): 2." in text
    assert "Diverged" not in "\n".join(verdict_lines(summary()))


def test_the_sooner_sentence_gives_target_first_arrivals_tests_and_speedup():
    assert sooner_sentence(comparison()) == (
        "sooner: **sooner** (target test AUC 0.20; first to reach it: dopr-adamw in 2, adamw in "
        "0, tied in 1 of 3 seeds; sign-test p = 0.25, Holm 0.5; speed-up median 1.50× [1.00×, ∞ "
        "(base never reached it)] (order-statistic 95 %))."
    )
    assert sooner_sentence(comparison(sooner_target=None)) == (
        "sooner: no target (base never left 0)."
    )


@pytest.mark.parametrize(
    "median, interval, words",
    [
        (0.0, None, "median 0× (candidate never reached it) (too few seeds for an interval)"),
        (2.0, [0.5, 4.0], "median 2.00× [0.50×, 4.00×] (order-statistic 95 %)"),
    ],
)
def test_the_speedup_says_who_never_reached_the_target_and_when_no_interval(
    median, interval, words
):
    sooner = comparison_values()
    sooner["sooner"].update(speedup_median=median, speedup_ci=interval)
    assert sooner_sentence(Comparison.model_validate(sooner)).endswith(f"speed-up {words}).")


def test_the_better_sentence_gives_the_test_only_where_there_was_one():
    assert better_sentence(comparison()) == (
        "better: **better (Holm p = 0.02)** (final test AUC 0.66 vs 0.38, paired difference "
        "+0.281, 90 % CI [+0.084, +0.479], 2 wins / 1 ties / 0 losses, permutation p = 0.25, "
        "Holm over 2 converged cells = 0.0123; change from step 150 to 300, 95 % CI, plateau "
        "when within ±0.1: adamw +0.062 [-0.050, +0.080]; dopr-adamw -0.010 [-0.090, +0.070])."
    )
    untested = better_sentence(comparison("not converged", holm_p=None))
    assert "permutation p" not in untested and "Holm" not in untested
    assert untested.startswith("better: **not converged** (final test AUC 0.66 vs 0.38")


def test_the_trend_sentence():
    assert trend_sentence(comparison()) == (
        "budget: candidate ahead first, gap closes (paired difference +0.25 [+0.10, +0.40] at "
        "step 150, changing by -0.12 [-0.30, +0.05] by step 300, per-seed 95 % CI)."
    )


def test_the_trend_sentence_with_one_budget_point_names_one_step():
    values = comparison_values()
    values["trend"].update(words="candidate ahead first, one budget point, so no trend",
                           last_step=150, change=0.0, change_ci=[0.0, 0.0])  # fmt: skip
    assert trend_sentence(Comparison.model_validate(values)) == (
        "budget: candidate ahead first, one budget point, so no trend (paired difference +0.25 "
        "[+0.10, +0.40] at step 150, per-seed 95 % CI)."
    )


def test_the_cell_table_has_a_column_per_horizon_and_a_row_per_optimizer():
    cell = summary_values()["cells"][0]
    cell["tuned"]["dopr-adamw"]["complete"] = False
    header, rule, complete, incomplete = cell_table(Cell.model_validate(cell))
    assert header == (
        "| optimizer | lr (chosen) | H=10 | H=20 | AUC | H@0.5 | best val loss | final val loss |"
    )
    assert rule == "|" + "---|" * 8
    assert complete == (
        "| adamw | 0.001 | 0.75 [0.50, 1.00] | 0.25 [0.00, 0.50] | 0.50 | 13.2 | 0.419 | 1.00e-04 |"
    )
    assert incomplete == "| dopr-adamw | 0.003 | " + "– | " * 6


@pytest.mark.parametrize("level, text", [(None, "> max H"), (0, "< min H"), (17.04, "17.0")])
def test_h_at_half_beyond_the_horizons_is_said_in_words(level, text):
    cell = summary_values()["cells"][0]
    cell["tuned"]["adamw"]["h_at_half"] = level
    assert f"| 0.50 | {text} | " in cell_table(Cell.model_validate(cell))[2]


def test_aggregate_lines_per_pair():
    row = {
        "base": "adamw",
        "candidate": "dopr-adamw",
        "cells": 2,
        "sooner": {
            "verdicts": {"sooner": 2},
            "speedup_median": None,
            "speedup_ci": None,
            "speedup_pairs": 0,
        },
        "verdicts": {"better": 1, "not converged": 1},
        "probability_of_improvement": 0.75,
        "probability_of_improvement_ci": [0.5, 1.0],
        "mean_auc_difference": 0.125,
        "mean_auc_difference_ci": [-0.05, 0.3],
    }
    sooner, better = aggregate_lines(summary(aggregate=[row]))
    assert sooner.startswith("**Sooner — dopr-adamw vs adamw, across 2 cells**")
    speedup = "none (no cell has a target both could be timed against)"
    assert f": 2 × sooner. Speed-up steps(adamw) / steps(dopr-adamw) over 0 seeds: {speedup}." in (
        sooner
    )
    assert better.startswith("**Better — dopr-adamw vs adamw, across 2 cells**")
    assert ": 1 better, 1 not converged. " in better
    assert "P(dopr-adamw run > adamw run) = 0.75 [0.50, 1.00]" in better
    assert "mean paired AUC difference +0.125 [-0.050, +0.300]" in better
    assert aggregate_lines(summary()) == []


def test_wall_time_and_stage_minutes_are_summed_over_invocations():
    invocations = [
        {
            "seconds": 60.0,
            "stages": {"collect": 30.0, "tune": 60.0},
            "worker_seconds": {"tune": {"train": 120.0, "validation episodes": 60.0}},
        },
        {"seconds": 120.0, "stages": {"tune": 120.0}, "worker_seconds": {"tune": {"train": 60.0}}},
    ]
    timed = summary(invocations=invocations)
    assert wall_time(timed) == "3.0 min over 2 invocation(s)"
    assert stage_breakdown(timed) == (
        "collect 0.5 min; tune 3.0 min (worker minutes, summed over workers: tune: train 3.0, "
        "validation episodes 1.0)"
    )
    assert wall_time(summary()) == "0.0 min over 0 invocation(s)"
    assert stage_breakdown(summary()) == ""


def test_recorded_versions_come_from_the_first_complete_runs_results(tmp_path):
    stats = summary_values()
    stats["cells"][0]["tuned"]["adamw"]["complete"] = False  # skipped: not evaluated
    results = tmp_path / stats["cells"][0]["tuned"]["dopr-adamw"]["test_dirs"][0]
    results.mkdir(parents=True)
    (results / "results.json").write_text(json.dumps({"versions": {"torch": "2.9.0"}}))
    assert recorded_versions(StudySummary.model_validate(stats), tmp_path) == {"torch": "2.9.0"}
    for row in stats["cells"][0]["tuned"].values():
        row["complete"] = False
    assert recorded_versions(StudySummary.model_validate(stats), tmp_path) == {}


def test_one_budget_checkpoint_says_no_plateau_check_instead_of_a_nan_change():
    """budget = [1.0] (from the real rules), and a file written when that case said change NaN
    in [-1, +1]: both say why there is no plateau, and print no NaN."""
    base = np.tile([0.5], (3, 1)) + np.array([[0.0], [0.01], [0.02]])
    curves = Curves(steps=[400], base=base, candidate=base + 0.2)
    (verdict,) = cell_verdicts([(curves, 0.4)], 0.1, "adamw", "dopr-adamw")
    values = comparison_values("not converged", holm_p=None)
    values["auc"]["verdict"] = verdict.better.verdict
    values.update(verdict.to_dict())
    old = comparison_values("not converged", holm_p=None)
    for role in ("base", "candidate"):
        old["plateau"][role].update(steps=[400, 400], change=float("nan"), ci=[-1.0, 1.0],
                                    plateaued=False)  # fmt: skip
    expected = (
        "one budget checkpoint (step 400) allows no plateau check, so neither optimizer is taken "
        "as plateaued (give the study's budget two or more points))."
    )
    for written in (values, old):
        sentence = better_sentence(Comparison.model_validate_json(json.dumps(written)))
        assert sentence.endswith(expected) and "nan" not in sentence
    assert "**not converged at 400 steps" in better_sentence(Comparison.model_validate(values))
