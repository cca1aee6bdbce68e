"""The results format of one evaluation: what results.json holds and how it is built from the
episode rows, and episodes.csv beside it. The format is documented and validated in
`schema.py`; `sweep.py` runs the episodes and calls `build_results` at the end.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..provenance import versions
from ..train.run_dir import TRAINER_STATE
from .episode import row_fields
from .schema import SCHEMA_ID, upgrade, validate
from .stats import area_under_curve, h50, wilson_interval


def build_results(config, checkpoint, saved, env_id, env_kwargs, seeds, rows, latency) -> dict:
    """results.json's content from the episode rows (episodes.jsonl), for the seeds asked for."""
    wanted = set(seeds)
    cells, curves = _cells_and_curves(config, [r for r in rows if r["seed"] in wanted], latency)
    state_path = checkpoint / TRAINER_STATE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    return {
        "schema": SCHEMA_ID,
        "config": config.to_dict(),
        "checkpoint": {
            "path": str(checkpoint),
            "step": int(state.get("step", 0)),
            "policy": saved["policy"],
            "train": saved["train"],
            "val_loss": state.get("val_loss"),
            "val_loss_ema": state.get("val_loss_ema"),
        },
        "env": {"id": env_id, "kwargs": env_kwargs, "split": config.split, "seeds": seeds},
        "versions": versions(),
        "cells": cells,
        "curves": curves,
        "episodes": sorted(
            (r for r in rows if r["seed"] in wanted),
            key=lambda r: (r["inference_steps"] or 0, r["task_horizon"], r["seed"]),
        ),
    }


def _cells_and_curves(config, rows: list[dict], latency: dict) -> tuple[list[dict], list[dict]]:
    """One cell per (sampler steps, H) with episodes; one curve (AUCs, H50) per sampler steps."""
    cells, curves = [], []
    axis = sorted({r["inference_steps"] for r in rows}, key=lambda s: (s is None, s))
    for steps in axis:
        rates, scores = [], []
        for horizon in config.task_horizons:
            cell_rows = [
                r for r in rows if r["task_horizon"] == horizon and r["inference_steps"] == steps
            ]
            if not cell_rows:
                continue
            cells.append(_cell(horizon, steps, cell_rows, latency.get(steps)))
            rates.append((horizon, cells[-1]["success_rate"]))
            scores.append(cells[-1]["mean_score"])
        if rates:
            hs, ss = zip(*rates, strict=True)
            scored = all(score is not None for score in scores)
            curves.append(
                {
                    "inference_steps": steps,
                    "auc": area_under_curve(hs, ss),
                    "h50": h50(hs, ss),
                    "score_auc": area_under_curve(hs, scores) if scored else None,
                }
            )
    return cells, curves


def _cell(horizon: int, steps: int | None, rows: list[dict], latency: float | None) -> dict:
    n = len(rows)
    wins = sum(r["success"] for r in rows)
    low, high = wilson_interval(wins, n)
    failures = [r["length"] for r in rows if not r["success"]]
    return {
        "task_horizon": horizon,
        "inference_steps": steps,
        "episodes": n,
        "successes": wins,
        "success_rate": wins / n,
        "wilson_low": low,
        "wilson_high": high,
        "mean_subgoals_done": float(np.mean([r["subgoals_done"] for r in rows])),
        "mean_score": _mean_score(rows),
        "mean_failure_step": float(np.mean(failures)) if failures else None,
        "errors": sum(r["error"] is not None for r in rows),
        "mean_episode_seconds": float(np.mean([r["seconds"] for r in rows])),
        "chunk_latency_ms": latency,
    }


def read_results(path: Path) -> dict:
    """A results.json of any schema version, in today's shape; a cut or malformed file is one
    sentence naming it."""
    try:
        results = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path} is not a readable results file ({error})") from None
    if isinstance(results, dict):
        results = upgrade(results)
    problems = validate(results)
    if problems:
        raise DataError(f"{path} is not a results file of this toolkit: {problems[0]}")
    return results


def _mean_score(rows: list[dict]) -> float | None:
    """The cell's mean continuous score; None when a row predates scores (a resumed old sweep)."""
    values = [r.get("score") for r in rows]
    return None if any(v is None for v in values) else float(np.mean(values))


def write_episodes_csv(path: Path, rows: list[dict]) -> None:
    """episodes.csv: one row per episode, the stored fields of `Episode` as columns."""
    columns = row_fields()
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in columns})
