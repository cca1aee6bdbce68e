"""From the runs' files to the study's numbers: lr choice, verdict, budget axis, aggregate.

Read from disk only (config.json, metrics.jsonl, eval/**/results.json), so a report can be rebuilt
at any time from what the runs wrote. The rules:
- **Learning rate (tuning runs):** per (cell, optimizer), the lr whose tuning runs have the
  highest mean validation AUC over the tuning seeds (ties go to the lr listed first). Neither the
  test episode seeds nor any verdict run is looked at for this.
- **Verdict (verdict runs):** per cell and pair, two answers (`convergence.py`): "sooner" — who
  reaches a target fixed from the tuning runs (80 % of the base's validation AUC) at an earlier
  budget checkpoint, exact sign test over seeds, Holm across the pair's cells, with the median
  speed-up steps_base / steps_candidate — and "better" — the exact sign-flip test of the final
  test AUC, Holm across the cells where both optimizers have plateaued (the 95 % interval of
  the change over the last two checkpoints within ± the study's `margin`), "equivalent within
  ±margin" by TOST, or "not converged at N steps". Per-H rows are descriptive
  (`paired.describe_paired`).
- **Aggregate, per pair across cells:** the probability of improvement (rliable: per cell the
  chance that a random candidate run beats a random base run on test AUC, ties half, averaged
  over cells) and the mean paired AUC difference, each with a 95 % paired stratified bootstrap
  interval (verdict seeds resampled within each cell with their pairs kept together; rliable
  resamples each algorithm's runs independently instead); the counts of each verdict; the
  median speed-up over all seeds of all cells.
- **Budget axis (verdict runs):** test AUC at the budget checkpoints (the same test episode
  seeds; the last point is the verdict's own number), mean over verdict seeds per optimizer, the
  paired difference at each, and the signed, paired trend from the first to the last.
- **Caution:** a chosen lr at an end of its grid is flagged when it beats its neighbour by more
  than one standard error of their difference — paired over tuning seeds, or with one tuning
  seed from the validation episodes' binomial noise alone: then the best lr may lie outside the
  grid. Within that margin the edge is not evidence of anything.
- **Robustness (tuning runs):** validation success averaged over every lr and tuning seed.
- **Diverged runs** (non-finite loss) count as failing every episode, and are listed.
- **Bands:** 95 % intervals over verdict seeds of the mean success (`intervals.mean_interval`:
  t, joined with the pooled Clopper–Pearson interval and the ceiling bound; checked for coverage
  against known truths).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..eval.results import read_results
from ..eval.stats import area_under_curve, h_at_level, spearman
from ..train import RunDir, TrainConfig
from .config import StudyConfig
from .convergence import Curves, cell_verdicts, median_interval, target_from_tuning
from .intervals import mean_interval
from .jobs import diverged
from .paired import describe_paired
from .plan import (
    MAX_GRID_EXTENSIONS,
    Cell,
    Grids,
    Run,
    base_grids,
    cells,
    compared_optimizers,
    extended_lr,
    task_of,
    tuning_runs,
    verdict_runs,
)
from .records import StudySummary

AGGREGATE_RESAMPLES = 2000
#: the absolute success level of the H@ column: comparable across optimizers and cells
SUCCESS_LEVEL = 0.5


def run_record(config: StudyConfig, root: Path, run: Run) -> dict[str, Any]:
    """What one run produced: success per H, AUCs, budget AUCs, val losses, divergence."""
    directory = run.directory(root)
    task = task_of(config, run.cell.task)
    horizons = task.horizons
    record: dict[str, Any] = {
        "cell": run.cell.key,
        "optimizer": run.optimizer,
        "lr": run.lr,
        "seed": run.seed,
        "role": "tuning" if run.seed in config.tuning_seed_list else "verdict",
        "directory": str(directory.relative_to(root)),
        "diverged": diverged(directory) is not None,
    }
    record.update(_val_losses(RunDir(directory).metrics))
    for split, out in (("validation", run.validation_dir(root)), ("test", run.test_dir(root))):
        record[split], record[f"{split}_auc"] = _curve(
            out, horizons, record["diverged"], config.metric
        )
    if record["role"] == "verdict":
        record["budget_auc"] = {
            str(step): record["test_auc"]
            if step == config.train_steps(task)
            else _curve(run.budget_dir(root, step), horizons, record["diverged"], config.metric)[1]
            for step in config.budget_steps(task)
        }
    return record


def _curve(
    out: Path, horizons: list[int], failed: bool, metric: str = "success"
) -> tuple[dict | None, float | None]:
    """Per-H values of the study's metric (success rate or mean score) and their AUC over H."""
    success = _metric_by_horizon(out / "results.json", horizons, metric)
    if success is None and failed:
        success = {h: 0.0 for h in horizons}
    if success is None:
        return None, None
    return success, area_under_curve(horizons, [success[h] for h in horizons])


def _val_losses(path: Path) -> dict[str, float | None]:
    """Best and final held-out loss of the EMA weights (what is evaluated), else the live ones."""
    values: list[float] = []
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            value = entry.get("val_loss_ema", entry.get("val_loss"))
            if value is not None and np.isfinite(value):
                values.append(float(value))
    return {
        "best_val_loss": min(values) if values else None,
        "final_val_loss": values[-1] if values else None,
    }


def _metric_by_horizon(path: Path, horizons: list[int], metric: str) -> dict[int, float] | None:
    """{H: success rate or mean score} of an evaluation, None while it is not finished; one
    sentence when the study's metric is the score and the results have none."""
    if not path.exists():
        return None
    results = read_results(path)
    key = "mean_score" if metric == "score" else "success_rate"
    rates = {cell["task_horizon"]: cell[key] for cell in results["cells"]}
    if not set(horizons) <= set(rates):
        return None
    if any(rates[h] is None for h in horizons):
        raise UserError(
            f'the study\'s metric is "score", but {path} has no score (written before scores '
            'existed); re-evaluate it (delete its folder and rerun), or use metric = "success"'
        )
    return {h: float(rates[h]) for h in horizons}


def choose_learning_rates(
    config: StudyConfig, records: list[dict], grids: Grids | None = None
) -> dict[tuple[str, str], dict]:
    """(cell key, optimizer) -> {"lr": chosen, "grid": {lr: mean validation AUC or None},
    "per_seed": {lr: [validation AUC per tuning seed]}, "episode_error": {lr: standard error of
    the mean AUC from the episodes alone}}, from the tuning runs only."""
    choice = {}
    grids = grids or base_grids(config)
    tuning = sorted((r for r in records if r["role"] == "tuning"), key=lambda r: r["seed"])
    for cell in cells(config):
        task = task_of(config, cell.task)
        for label in compared_optimizers(config):
            grid, per_seed, episode_error = {}, {}, {}
            for lr in grids[(cell.key, label)]:
                mine = [
                    r
                    for r in tuning
                    if r["cell"] == cell.key and r["optimizer"] == label and r["lr"] == lr
                ]
                aucs = [r["validation_auc"] for r in mine]
                complete = len(aucs) == config.tuning_seeds and all(a is not None for a in aucs)
                grid[lr] = float(np.mean(aucs)) if complete else None
                per_seed[lr] = aucs if complete else None
                episode_error[lr] = (
                    _episode_error([r["validation"] for r in mine], task) if complete else None
                )
            known = {lr: auc for lr, auc in grid.items() if auc is not None}
            chosen = (
                max(known, key=lambda lr: (known[lr], -list(grid).index(lr))) if known else None
            )
            choice[(cell.key, label)] = {
                "lr": chosen,
                "grid": grid,
                "per_seed": per_seed,
                "episode_error": episode_error,
            }
    return choice


def _episode_error(curves: list[dict], task) -> float:
    """Standard error of the seeds' mean AUC from episode noise alone: the AUC is a weighted sum
    of per-H success rates, each binomial over the validation episodes. It ignores seed noise
    (usually the larger part), so it is the least a difference must exceed to mean anything."""
    horizons, n = task.horizons, task.validation_episodes
    weights = [
        area_under_curve(horizons, [1.0 if h == g else 0.0 for h in horizons]) for g in horizons
    ]
    variance = sum(
        w * w * c[h] * (1 - c[h]) / n
        for c in curves
        for w, h in zip(weights, horizons, strict=True)
    )
    return float(np.sqrt(variance) / len(curves))


def lr_at_edge(selection: dict) -> str | None:
    """ "largest" / "smallest" when the chosen lr is at that end of its grid and beats its
    neighbour by more than one standard error of their difference: over tuning seeds (paired by
    seed) when there are two or more, else from the validation episodes alone."""
    known = {lr: auc for lr, auc in selection["grid"].items() if auc is not None}
    chosen = selection["lr"]
    if chosen is None or len(known) < 2:
        return None
    ordered = sorted(known)
    for end, neighbour, name in (
        (ordered[-1], ordered[-2], "largest"),
        (ordered[0], ordered[1], "smallest"),
    ):
        if chosen != end:
            continue
        difference = np.asarray(selection["per_seed"][end]) - selection["per_seed"][neighbour]
        if len(difference) > 1:
            error = difference.std(ddof=1) / np.sqrt(len(difference))
        else:
            episodes = selection.get("episode_error", {})
            error = np.hypot(episodes.get(end) or 0.0, episodes.get(neighbour) or 0.0)
        if difference.mean() > error:
            return name
    return None


def extend_grids(config: StudyConfig, choice: dict, grids: Grids) -> list[tuple[str, str]]:
    """Add one lr beyond the end of each grid whose chosen lr sits at that end and beats its
    neighbour (`lr_at_edge`), up to MAX_GRID_EXTENSIONS per grid and only once every lr of the
    grid has finished; the keys extended."""
    added = []
    for key, selection in choice.items():
        side = lr_at_edge(selection)
        extended = len(grids[key]) - len(config.optimizers[key[1]].lr)
        unfinished = any(auc is None for auc in selection["grid"].values())
        if side is None or extended >= MAX_GRID_EXTENSIONS or unfinished:
            continue
        new = extended_lr(grids[key], side)
        if new not in grids[key]:
            grids[key].append(new)
            added.append(key)
    return added


def tune_with_extensions(config: StudyConfig, root: Path, train=None) -> tuple[list, dict, Grids]:
    """The tuning records, the lr choice and the grids they came from, extending grids at an
    edge (`extend_grids`). `train(runs)` trains what is missing before each round (the runner);
    without it, a round whose new runs are not on disk chooses among the finished ones, so the
    choice is a pure function of the files (the summary)."""
    grids = base_grids(config)
    while True:
        runs = tuning_runs(config, grids)
        if train is not None:
            train(runs)
        records = [run_record(config, root, run) for run in runs]
        choice = choose_learning_rates(config, records, grids)
        if not extend_grids(config, choice, grids):
            return records, choice, grids


def summarise(config: StudyConfig, root: Path) -> StudySummary:
    """Everything the report shows (also summary.json). Built as plain dicts with the same
    shape, as the rules below are written over them, and validated into the typed records once,
    here, so what leaves this module is typed (`records.py`)."""
    records, choice, grids = tune_with_extensions(config, root)
    chosen = {key: entry["lr"] for key, entry in choice.items()}
    records += [run_record(config, root, run) for run in verdict_runs(config, chosen)]
    by_key = {(r["cell"], r["optimizer"], r["lr"], r["seed"]): r for r in records}
    summary_cells = []
    for cell in cells(config):
        task = task_of(config, cell.task)
        tuned = {}
        for label in compared_optimizers(config):
            lr = chosen[(cell.key, label)]
            seed_records = [by_key.get((cell.key, label, lr, s)) for s in config.verdict_seed_list]
            tuned[label] = _tuned_stats(label, lr, seed_records, task, choice[(cell.key, label)])
        summary_cells.append(
            {
                "key": cell.key,
                "label": cell.label,
                "task": cell.task,
                "policy": cell.policy,
                "conditioning": cell.conditioning,
                "horizons": task.horizons,
                "budget_steps": config.budget_steps(task),
                "tuned": tuned,
                "comparisons": _descriptive_comparisons(config, tuned, task.horizons),
                "robustness": _robustness(config, cell, records, task.horizons),
                "val_loss_vs_success": _scatter(cell, records),
            }
        )
    _add_verdicts(config, summary_cells)
    return StudySummary.model_validate({
        "study": config.name,
        "tuning_seeds": config.tuning_seed_list,
        "verdict_seeds": config.verdict_seed_list,
        "data_seeds": config.data_seeds,
        "budget": config.budget,
        "steps": " / ".join(
            sorted({str(TrainConfig.from_dict(config.train_values(t)).steps) for t in config.tasks})
        ),
        "cells": summary_cells,
        "grid_extensions": [
            {"cell": key[0], "optimizer": key[1], "added": lrs[len(config.optimizers[key[1]].lr) :]}
            for key, lrs in grids.items()
            if len(lrs) > len(config.optimizers[key[1]].lr)
        ],
        "aggregate": _aggregate(config, summary_cells),
        "diverged_runs": [r["directory"] for r in records if r["diverged"]],
        "runs": records,
    })  # fmt: skip


def _tuned_stats(label, lr, seed_records, task, selection) -> dict[str, Any]:
    horizons = task.horizons
    stats: dict[str, Any] = {
        "optimizer": label,
        "lr": lr,
        "validation_auc": selection["grid"].get(lr) if lr is not None else None,
        "lr_grid": [
            {"lr": value, "validation_auc": auc} for value, auc in selection["grid"].items()
        ],
        "lr_at_edge": lr_at_edge(selection),
    }
    complete = all(
        r is not None and r["test"] is not None and None not in r["budget_auc"].values()
        for r in seed_records
    )
    if lr is None or not complete:
        stats["complete"] = False
        return stats
    per_seed = {h: [r["test"][h] for r in seed_records] for h in horizons}
    mean_curve = [float(np.mean(per_seed[h])) for h in horizons]
    budget_per_seed = {
        step: [r["budget_auc"][step] for r in seed_records]
        for step in seed_records[0]["budget_auc"]
    }
    stats.update(
        {
            "complete": True,
            "success_per_seed": {str(h): per_seed[h] for h in horizons},
            "success": {str(h): m for h, m in zip(horizons, mean_curve, strict=True)},
            "band": {str(h): mean_interval(per_seed[h], task.test_episodes) for h in horizons},
            "auc_per_seed": [r["test_auc"] for r in seed_records],
            "auc": float(np.mean([r["test_auc"] for r in seed_records])),
            "h_at_half": h_at_level(horizons, mean_curve, SUCCESS_LEVEL),
            "budget_auc_per_seed": budget_per_seed,
            "budget_auc": {step: float(np.mean(v)) for step, v in budget_per_seed.items()},
            "budget_band": {step: mean_interval(v) for step, v in budget_per_seed.items()},
            "best_val_loss": _mean([r["best_val_loss"] for r in seed_records]),
            "final_val_loss": _mean([r["final_val_loss"] for r in seed_records]),
            "diverged": sum(r["diverged"] for r in seed_records),
            "test_dirs": [str(RunDir(r["directory"]).eval_dir("test")) for r in seed_records],
        }
    )
    return stats


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _descriptive_comparisons(config: StudyConfig, tuned: dict, horizons: list[int]) -> list[dict]:
    """Per pair: the per-H rows and the budget rows (descriptive); the headline comes later."""
    comparisons = []
    for base, candidate in config.pairs:
        if not (tuned[base]["complete"] and tuned[candidate]["complete"]):
            continue
        b, c = tuned[base], tuned[candidate]
        rows = [
            {
                "task_horizon": h,
                **describe_paired(
                    b["success_per_seed"][str(h)], c["success_per_seed"][str(h)]
                ).to_dict(),
            }
            for h in horizons
        ]
        budget = [
            {
                "step": int(step),
                **describe_paired(
                    b["budget_auc_per_seed"][step], c["budget_auc_per_seed"][step]
                ).to_dict(),
            }
            for step in b["budget_auc_per_seed"]
        ]
        comparisons.append(
            {
                "base": base,
                "candidate": candidate,
                "per_horizon": rows,
                "budget": budget,
            }
        )
    return comparisons


def _add_verdicts(config: StudyConfig, summary_cells: list[dict]) -> None:
    """Sooner, plateau, better and the budget trend for every cell of each pair; the sooner and
    the better tests are each Holm-corrected across the pair's cells."""
    for base, candidate in config.pairs:
        where = [(cell, comparison) for cell in summary_cells for comparison in cell["comparisons"]
                 if (comparison["base"], comparison["candidate"]) == (base, candidate)]  # fmt: skip
        inputs = []
        for cell, _ in where:
            b, c = cell["tuned"][base], cell["tuned"][candidate]
            steps = [str(step) for step in cell["budget_steps"]]
            curves = Curves(
                steps=list(cell["budget_steps"]),
                base=np.array([b["budget_auc_per_seed"][s] for s in steps], float).T,
                candidate=np.array([c["budget_auc_per_seed"][s] for s in steps], float).T,
            )
            inputs.append((curves, target_from_tuning(b.get("validation_auc"))))
        verdicts = cell_verdicts(inputs, config.margin, base, candidate)
        for (cell, comparison), verdict in zip(where, verdicts, strict=True):
            b, c = cell["tuned"][base], cell["tuned"][candidate]
            final = describe_paired(b["auc_per_seed"], c["auc_per_seed"]).to_dict()
            better = verdict.better
            comparison["auc"] = {**final, "verdict": better.verdict, "holm_p": better.holm_p,
                                 "tests_in_family": better.tests_in_family,
                                 "ci90": list(better.ci90), "margin": better.margin}  # fmt: skip
            comparison.update(verdict.to_dict())


def verdict_kind(verdict: str) -> str:
    """The verdict's category, for counting: one of VERDICT_ORDER."""
    return next((kind for kind in VERDICT_ORDER if verdict.startswith(kind)), verdict)


def probability_of_improvement(base: np.ndarray, candidate: np.ndarray) -> float:
    """P(candidate run > base run), ties counted half: the Mann–Whitney U over all run pairs."""
    greater = (candidate[:, None] > base[None, :]).mean()
    equal = (candidate[:, None] == base[None, :]).mean()
    return float(greater + 0.5 * equal)


def _aggregate(config: StudyConfig, summary_cells: list[dict]) -> list[dict]:
    """Per pair, across the cells where it is complete: probability of improvement and mean
    paired AUC difference, with stratified-bootstrap 95 % intervals, and the verdict counts."""
    out = []
    for base, candidate in config.pairs:
        strata = [
            (
                np.asarray(cell["tuned"][base]["auc_per_seed"], float),
                np.asarray(cell["tuned"][candidate]["auc_per_seed"], float),
                comparison["auc"]["verdict"],
            )
            for cell in summary_cells
            for comparison in cell["comparisons"]
            if (comparison["base"], comparison["candidate"]) == (base, candidate)
        ]
        if not strata:
            continue
        rng = np.random.default_rng(0)
        draws = np.array(
            [
                _across_cells(strata, [rng.integers(0, len(b), len(b)) for b, _, _ in strata])
                for _ in range(AGGREGATE_RESAMPLES)
            ]
        )
        improvement, difference = _across_cells(strata, [None] * len(strata))
        low, high = np.percentile(draws, [2.5, 97.5], axis=0)
        verdicts = [verdict_kind(v) for _, _, v in strata]
        out.append(
            {
                "base": base,
                "candidate": candidate,
                "cells": len(strata),
                "probability_of_improvement": improvement,
                "probability_of_improvement_ci": [float(low[0]), float(high[0])],
                "mean_auc_difference": difference,
                "mean_auc_difference_ci": [float(low[1]), float(high[1])],
                "verdicts": {v: verdicts.count(v) for v in VERDICT_ORDER if v in verdicts},
                "sooner": _sooner_aggregate(summary_cells, base, candidate),
            }
        )
    return out


def _across_cells(strata: list, picks: list) -> tuple[float, float]:
    """(mean over cells of the probability of improvement, of the mean paired difference), with
    each cell's verdict seeds resampled by `picks` (None: as observed); pairs stay together."""
    improvement, difference = [], []
    for (base, candidate, _), pick in zip(strata, picks, strict=True):
        if pick is not None:
            base, candidate = base[pick], candidate[pick]
        improvement.append(probability_of_improvement(base, candidate))
        difference.append(float(np.mean(candidate - base)))
    return float(np.mean(improvement)), float(np.mean(difference))


VERDICT_ORDER = ("better", "worse", "equivalent", "inconclusive", "not converged",
                 "at the ceiling", "at the floor")  # fmt: skip


def _sooner_aggregate(summary_cells: list[dict], base: str, candidate: str) -> dict:
    """Across the pair's cells: the sooner verdicts' counts and the median speed-up over every
    seed of every cell with a target (censoring as in `convergence.sooner`)."""
    found = [comparison["sooner"] for cell in summary_cells for comparison in cell["comparisons"]
             if (comparison["base"], comparison["candidate"]) == (base, candidate)]  # fmt: skip
    ratios = []
    for result in found:
        if result["target"] is None:
            continue
        for b, c in zip(result["steps_base"], result["steps_candidate"], strict=True):
            if b is None and c is None:
                continue
            ratios.append(np.inf if b is None else 0.0 if c is None else b / c)
    words = [result["verdict"] for result in found]
    median = float(np.median(ratios)) if ratios else None
    return {
        "verdicts": {w: words.count(w) for w in dict.fromkeys(words)},
        "speedup_median": median,
        "speedup_ci": median_interval(np.array(ratios)) if ratios else None,
        "speedup_pairs": len(ratios),
    }


def _robustness(config: StudyConfig, cell: Cell, records: list[dict], horizons) -> dict:
    table = {}
    for label in compared_optimizers(config):
        mine = [
            r
            for r in records
            if r["role"] == "tuning" and r["cell"] == cell.key and r["optimizer"] == label
        ]
        if not mine or any(r["validation"] is None for r in mine):
            table[label] = None
            continue
        table[label] = {
            str(h): float(np.mean([r["validation"][h] for r in mine])) for h in horizons
        }
    return table


def _scatter(cell: Cell, records: list[dict]) -> dict:
    """Tuning runs (every lr and tuning seed): final validation loss vs validation AUC."""
    points = [
        {
            "optimizer": r["optimizer"],
            "lr": r["lr"],
            "seed": r["seed"],
            "final_val_loss": r["final_val_loss"],
            "validation_auc": r["validation_auc"],
        }
        for r in records
        if r["role"] == "tuning"
        and r["cell"] == cell.key
        and r["final_val_loss"] is not None
        and r["validation_auc"] is not None
        and not r["diverged"]
    ]
    rho = (
        spearman([p["final_val_loss"] for p in points], [p["validation_auc"] for p in points])
        if len(points) >= 3
        else None
    )
    return {"points": points, "spearman": rho}
