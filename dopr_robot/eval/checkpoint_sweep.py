"""Validation loss beside closed-loop success, over the checkpoints of one run.

Every checkpoint of a run is swept with the same settings and seeds (finished sweeps are reused,
so this resumes too). The summary lists, per checkpoint, its step, validation loss (live and
EMA) and AUC of success over the swept H, and the Spearman rank correlation of each loss with
the AUC (lower loss should mean higher success; the correlation says how far it does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # pyplot-free: the caller's backend is left alone

from ..errors import UserError
from ..train.run_dir import RunDir
from .config import EvalConfig
from .results import read_results
from .stats import spearman
from .sweep import evaluate


def evaluate_checkpoints(run: Path, config: EvalConfig, progress: bool = True) -> dict[str, Any]:
    folders = RunDir(run).checkpoints_newest_first()[::-1]  # finished ones, oldest first
    if not folders:
        raise UserError(f"{run} holds no checkpoints")
    out = Path(config.out or RunDir(run).eval_dir(f"checkpoints-{config.split}"))
    rows = []
    for folder in folders:
        sweep_out = out / folder.name
        done = sweep_out / "results.json"
        if done.exists():
            results = read_results(done)
        else:
            single = config.model_copy(update={"checkpoint": str(folder), "out": str(sweep_out)})
            results = evaluate(single, resume=sweep_out.exists(), progress=progress)
        curve = results["curves"][-1]
        rows.append(
            {
                "checkpoint": folder.name,
                "step": results["checkpoint"]["step"],
                "val_loss": results["checkpoint"]["val_loss"],
                "val_loss_ema": results["checkpoint"]["val_loss_ema"],
                "auc": curve["auc"],
                "h50": curve["h50"],
            }
        )
    summary = {"run": str(run), "config": config.__dict__, "checkpoints": rows}
    for key in ("val_loss", "val_loss_ema"):
        pairs = [(r[key], r["auc"]) for r in rows if r[key] is not None]
        summary[f"spearman_{key}_vs_auc"] = (
            spearman([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None
        )
    (out / "checkpoint_sweep.json").write_text(json.dumps(summary, indent=2))
    _plot(rows, out / "val_loss_vs_success.png")
    return summary


def _plot(rows: list[dict], path: Path) -> None:
    figure = Figure(figsize=(5, 4), dpi=120)
    axis = figure.subplots()
    for key, marker in (("val_loss", "o"), ("val_loss_ema", "s")):
        points = [(r[key], r["auc"], r["step"]) for r in rows if r[key] is not None]
        if points:
            axis.scatter(
                [p[0] for p in points],
                [p[1] for p in points],
                marker=marker,
                label=key.replace("_", " "),
            )
            for x, y, step in points:
                axis.annotate(
                    str(step), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
                )
    axis.set_xlabel("validation loss")
    axis.set_ylabel("closed-loop success (AUC over H)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
