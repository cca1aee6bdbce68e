"""From the runs' files to the study's numbers: lr choice, tuned comparison, robustness, scatter.

Read from disk only (config.json, metrics.jsonl, eval/*/results.json), so a report can be rebuilt
at any time from what the runs wrote. The rules:
- **Learning rate:** per (cell, optimizer), the lr whose runs have the highest mean validation AUC
  over training seeds (validation seed list; ties go to the lr listed first). The test seed list
  is not looked at for this.
- **Tuned comparison:** per cell, pair and H, the candidate's and the base's per-seed success on
  the test seed list at their chosen lrs, paired by training seed (`paired.compare_paired`).
- **Robustness:** per (cell, optimizer, H), validation success averaged over every lr in the grid
  and every seed. A different question (how much does tuning matter?), kept apart.
- **Diverged runs** (non-finite loss) count as failing every episode, and are listed.
- **Bands:** 95 % percentile bootstrap over training seeds of the mean success — the spread that
  matters when asking whether an optimizer helps, not the episode-level Wilson interval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..eval.stats import area_under_curve, bootstrap_mean_interval, h50, spearman
from ..train import TrainConfig
from .config import StudyConfig
from .jobs import diverged
from .paired import compare_paired
from .plan import Cell, Run, cells, compared_optimizers, runs, task_of

BOOTSTRAP_RESAMPLES = 2000


def run_record(config: StudyConfig, root: Path, run: Run) -> dict[str, Any]:
    """What one run produced: validation/test success per H, AUCs, val losses, divergence."""
    directory = run.directory(root)
    horizons = task_of(config, run.cell.task).horizons
    record: dict[str, Any] = {
        "cell": run.cell.key,
        "optimizer": run.optimizer,
        "lr": run.lr,
        "seed": run.seed,
        "directory": str(directory.relative_to(root)),
        "diverged": diverged(directory) is not None,
    }
    record.update(_val_losses(directory / "metrics.jsonl"))
    for split, out in (("validation", run.validation_dir(root)), ("test", run.test_dir(root))):
        success = _success(out / "results.json", horizons)
        if success is None and record["diverged"]:
            success = {h: 0.0 for h in horizons}
        record[split] = success
        record[f"{split}_auc"] = (
            None if success is None else area_under_curve(horizons, [success[h] for h in horizons])
        )
    return record


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


def _success(path: Path, horizons: list[int]) -> dict[int, float] | None:
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    rates = {cell["task_horizon"]: cell["success_rate"] for cell in results["cells"]}
    return {h: float(rates[h]) for h in horizons} if set(horizons) <= set(rates) else None


def choose_learning_rates(config: StudyConfig, records: list[dict]) -> dict[tuple[str, str], dict]:
    """(cell key, optimizer) -> {"lr": chosen, "grid": {lr: mean validation AUC or None}}."""
    choice = {}
    for cell in cells(config):
        for label in compared_optimizers(config):
            grid = {}
            for lr in config.optimizers[label].lr:
                aucs = [
                    r["validation_auc"]
                    for r in records
                    if r["cell"] == cell.key and r["optimizer"] == label and r["lr"] == lr
                ]
                complete = len(aucs) == config.seeds and all(a is not None for a in aucs)
                grid[lr] = float(np.mean(aucs)) if complete else None
            known = {lr: auc for lr, auc in grid.items() if auc is not None}
            chosen = (
                max(known, key=lambda lr: (known[lr], -list(grid).index(lr))) if known else None
            )
            choice[(cell.key, label)] = {"lr": chosen, "grid": grid}
    return choice


def tuned_runs(config: StudyConfig, choice: dict[tuple[str, str], dict]) -> list[Run]:
    """The runs the test seeds are spent on: every seed of each optimizer's chosen lr."""
    chosen = []
    for cell in cells(config):
        for label in compared_optimizers(config):
            lr = choice[(cell.key, label)]["lr"]
            if lr is not None:
                chosen += [Run(cell, label, lr, seed) for seed in range(config.seeds)]
    return chosen


def bootstrap_band(values: list[float], seed: int = 0) -> tuple[float, float]:
    return bootstrap_mean_interval(values, BOOTSTRAP_RESAMPLES, seed)


def summarise(config: StudyConfig, root: Path) -> dict[str, Any]:
    """Everything the report shows, as one JSON-serialisable dict (also summary.json)."""
    records = [run_record(config, root, run) for run in runs(config)]
    choice = choose_learning_rates(config, records)
    by_key = {(r["cell"], r["optimizer"], r["lr"], r["seed"]): r for r in records}
    summary_cells = []
    for cell in cells(config):
        horizons = task_of(config, cell.task).horizons
        tuned = {}
        for label in compared_optimizers(config):
            lr = choice[(cell.key, label)]["lr"]
            seed_records = [by_key.get((cell.key, label, lr, s)) for s in range(config.seeds)]
            tuned[label] = _tuned_stats(
                label, lr, seed_records, horizons, choice[(cell.key, label)]
            )
        summary_cells.append(
            {
                "key": cell.key,
                "label": cell.label,
                "task": cell.task,
                "policy": cell.policy,
                "conditioning": cell.conditioning,
                "horizons": horizons,
                "tuned": tuned,
                "comparisons": _comparisons(config, tuned, horizons),
                "robustness": _robustness(config, cell, records, horizons),
                "val_loss_vs_success": _scatter(cell, records),
            }
        )
    return {
        "study": config.name,
        "seeds": config.seeds,
        "steps": " / ".join(
            sorted({str(TrainConfig.from_dict(config.train_values(t)).steps) for t in config.tasks})
        ),
        "cells": summary_cells,
        "diverged_runs": [r["directory"] for r in records if r["diverged"]],
        "runs": records,
    }


def _tuned_stats(label, lr, seed_records, horizons, selection) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "optimizer": label,
        "lr": lr,
        "lr_grid": _grid_list(selection),
        "lr_at_edge": lr_at_edge(selection),
    }
    complete = all(r is not None and r["test"] is not None for r in seed_records)
    if lr is None or not complete:
        stats["complete"] = False
        return stats
    per_seed = {h: [r["test"][h] for r in seed_records] for h in horizons}
    mean_curve = [float(np.mean(per_seed[h])) for h in horizons]
    stats.update(
        {
            "complete": True,
            "success_per_seed": {str(h): per_seed[h] for h in horizons},
            "success": {str(h): m for h, m in zip(horizons, mean_curve, strict=True)},
            "band": {str(h): bootstrap_band(per_seed[h]) for h in horizons},
            "auc_per_seed": [r["test_auc"] for r in seed_records],
            "auc": float(np.mean([r["test_auc"] for r in seed_records])),
            "h50": h50(horizons, mean_curve),
            "best_val_loss": _mean([r["best_val_loss"] for r in seed_records]),
            "final_val_loss": _mean([r["final_val_loss"] for r in seed_records]),
            "diverged": sum(r["diverged"] for r in seed_records),
            "test_dirs": [str(Path(r["directory"]) / "eval" / "test") for r in seed_records],
        }
    )
    return stats


def lr_at_edge(selection: dict) -> str | None:
    """ "largest" / "smallest" when the chosen lr is at that end of its grid and strictly beats
    its neighbour: the optimizer's best lr may then lie outside the grid (not tuned)."""
    known = {lr: auc for lr, auc in selection["grid"].items() if auc is not None}
    chosen = selection["lr"]
    if chosen is None or len(known) < 2:
        return None
    ordered = sorted(known)
    for end, neighbour, name in (
        (ordered[-1], ordered[-2], "largest"),
        (ordered[0], ordered[1], "smallest"),
    ):
        if chosen == end and known[end] > known[neighbour]:
            return name
    return None


def _grid_list(selection: dict) -> list[dict]:
    return [{"lr": lr, "validation_auc": auc} for lr, auc in selection["grid"].items()]


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _comparisons(config: StudyConfig, tuned: dict, horizons: list[int]) -> list[dict]:
    comparisons = []
    for base, candidate in config.pairs:
        if not (tuned[base]["complete"] and tuned[candidate]["complete"]):
            continue
        rows = []
        for h in horizons:
            result = compare_paired(
                tuned[base]["success_per_seed"][str(h)],
                tuned[candidate]["success_per_seed"][str(h)],
            )
            rows.append({"task_horizon": h, **result.to_dict()})
        auc = compare_paired(tuned[base]["auc_per_seed"], tuned[candidate]["auc_per_seed"])
        comparisons.append(
            {"base": base, "candidate": candidate, "per_horizon": rows, "auc": auc.to_dict()}
        )
    return comparisons


def _robustness(config: StudyConfig, cell: Cell, records: list[dict], horizons) -> dict:
    table = {}
    for label in compared_optimizers(config):
        mine = [r for r in records if r["cell"] == cell.key and r["optimizer"] == label]
        if not mine or any(r["validation"] is None for r in mine):
            table[label] = None
            continue
        table[label] = {
            str(h): float(np.mean([r["validation"][h] for r in mine])) for h in horizons
        }
    return table


def _scatter(cell: Cell, records: list[dict]) -> dict:
    points = [
        {
            "optimizer": r["optimizer"],
            "lr": r["lr"],
            "seed": r["seed"],
            "final_val_loss": r["final_val_loss"],
            "validation_auc": r["validation_auc"],
        }
        for r in records
        if r["cell"] == cell.key
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
