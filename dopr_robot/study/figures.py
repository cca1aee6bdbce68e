"""The study's figures, one panel per cell: success vs H (tuned), and val loss vs success."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure  # pyplot-free: the caller's backend is left alone


def _grid(n: int, width: float = 4.0, height: float = 3.2):
    columns = min(n, 4)
    rows = math.ceil(n / columns)
    figure = Figure(figsize=(width * columns, height * rows), dpi=110)
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat[n:]:
        axis.set_visible(False)
    return figure, list(axes.flat[:n])


def _colours(labels: list[str]) -> dict[str, str]:
    palette = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def plot_success_grid(summary: dict, path: Path) -> Path:
    """Per cell: mean test success over training seeds vs H (log2), band = seed bootstrap 95 %."""
    cells = summary["cells"]
    figure, axes = _grid(len(cells))
    colours = _colours(list(cells[0]["tuned"]) if cells else [])
    for axis, cell in zip(axes, cells, strict=True):
        for label, stats in cell["tuned"].items():
            if not stats["complete"]:
                continue
            h = cell["horizons"]
            axis.plot(
                h,
                [stats["success"][str(x)] for x in h],
                marker="o",
                color=colours[label],
                label=f"{label} (lr {stats['lr']:g})",
            )
            axis.fill_between(
                h,
                [stats["band"][str(x)][0] for x in h],
                [stats["band"][str(x)][1] for x in h],
                color=colours[label],
                alpha=0.2,
            )
        axis.set_xscale("log", base=2)
        axis.set_ylim(-0.02, 1.02)
        axis.set_title(cell["label"], fontsize=9)
        axis.set_xlabel("task horizon H")
        axis.set_ylabel("test success")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(
        f"{summary['study']}: closed-loop success, tuned lr, mean over {summary['seeds']} "
        "training seeds (band: seed bootstrap 95 %)",
        fontsize=10,
    )
    return _save(figure, path)


def plot_val_loss_vs_success(summary: dict, path: Path) -> Path:
    """Per cell: every run (all lrs and seeds): final validation loss vs validation AUC."""
    cells = summary["cells"]
    figure, axes = _grid(len(cells))
    colours = _colours(list(cells[0]["tuned"]) if cells else [])
    for axis, cell in zip(axes, cells, strict=True):
        scatter = cell["val_loss_vs_success"]
        for label in cell["tuned"]:
            points = [p for p in scatter["points"] if p["optimizer"] == label]
            axis.scatter(
                [p["final_val_loss"] for p in points],
                [p["validation_auc"] for p in points],
                color=colours[label],
                label=label,
                s=18,
                alpha=0.8,
            )
        rho = scatter["spearman"]
        title = cell["label"] + ("" if rho is None else f"\nSpearman ρ = {rho:+.2f}")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("final validation loss (EMA)")
        axis.set_ylabel("closed-loop AUC (validation)")
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("validation loss vs closed-loop success, every run", fontsize=10)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
