"""The results format of one evaluation: what results.json holds and how it is built from the
episode rows, and episodes.csv beside it. The format is documented and validated in
`schema.py`; `sweep.py` runs the episodes and calls `build_results` at the end.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..provenance import versions
from .schema import SCHEMA_ID
from .stats import area_under_curve, h50, wilson_interval


def build_results(config, checkpoint, saved, env_id, env_kwargs, seeds, rows, latency) -> dict:
    """results.json's content from the episode rows (episodes.jsonl), for the seeds asked for."""
    wanted = set(seeds)
    cells, curves = [], []
    axis = sorted({r["inference_steps"] for r in rows}, key=lambda s: (s is None, s))
    for steps in axis:
        rates = []
        for horizon in config.task_horizons:
            cell_rows = [
                r
                for r in rows
                if r["task_horizon"] == horizon
                and r["inference_steps"] == steps
                and r["seed"] in wanted
            ]
            if not cell_rows:
                continue
            n = len(cell_rows)
            wins = sum(r["success"] for r in cell_rows)
            low, high = wilson_interval(wins, n)
            failures = [r["length"] for r in cell_rows if not r["success"]]
            cells.append(
                {
                    "task_horizon": horizon,
                    "inference_steps": steps,
                    "episodes": n,
                    "successes": wins,
                    "success_rate": wins / n,
                    "wilson_low": low,
                    "wilson_high": high,
                    "mean_subgoals_done": float(np.mean([r["subgoals_done"] for r in cell_rows])),
                    "mean_failure_step": float(np.mean(failures)) if failures else None,
                    "errors": sum(r["error"] is not None for r in cell_rows),
                    "mean_episode_seconds": float(np.mean([r["seconds"] for r in cell_rows])),
                    "chunk_latency_ms": latency.get(steps),
                }
            )
            rates.append((horizon, wins / n))
        if rates:
            hs, ss = zip(*rates, strict=True)
            curves.append(
                {"inference_steps": steps, "auc": area_under_curve(hs, ss), "h50": h50(hs, ss)}
            )
    state_path = checkpoint / "trainer_state.json"
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


def write_episodes_csv(path: Path, rows: list[dict]) -> None:
    """episodes.csv: one row per episode, the columns a spreadsheet user wants."""
    columns = [
        "task_horizon",
        "inference_steps",
        "seed",
        "success",
        "subgoals_done",
        "length",
        "seconds",
        "error",
    ]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in columns})
