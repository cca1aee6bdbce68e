"""The study's figures, one panel per cell: success vs H (verdict runs), success vs training
step (the budget axis), and validation loss vs success (tuning runs), from a `StudySummary`."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure  # pyplot-free: the caller's backend is left alone

from .records import Cell, StudySummary, TunedComplete


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


def _label_panel(axis, title: str, xlabel: str, ylabel: str) -> None:
    """One cell's panel: a success-rate y axis, its title, labels, grid and legend."""
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(title, fontsize=9)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)


def _panels(summary: StudySummary):
    """The figure, (axis, cell) per cell, and one colour per optimizer label for all panels."""
    cells = summary.cells
    figure, axes = _grid(len(cells))
    colours = _colours(list(cells[0].tuned) if cells else [])
    return figure, list(zip(axes, cells, strict=True)), colours


def _tuned_curves(axis, cell: Cell, colours: dict[str, str], curve) -> None:
    """Per optimizer with complete verdict runs: `curve(stats)` -> (x, means, bands) drawn as a
    line with its band, labelled with the chosen lr."""
    for label, stats in cell.tuned.items():
        if not isinstance(stats, TunedComplete):
            continue
        x, means, bands = curve(stats)
        axis.plot(x, means, marker="o", color=colours[label], label=f"{label} (lr {stats.lr:g})")
        axis.fill_between(
            x, [band[0] for band in bands], [band[1] for band in bands], color=colours[label],
            alpha=0.2,
        )  # fmt: skip


def plot_success_grid(summary: StudySummary, path: Path) -> Path:
    """Per cell: mean test success over verdict seeds vs H (log2), band: 95 % interval over seeds
    (intervals.mean_interval)."""
    figure, panels, colours = _panels(summary)
    for axis, cell in panels:
        h = cell.horizons
        _tuned_curves(
            axis,
            cell,
            colours,
            lambda stats, h=h: (h, [stats.success[x] for x in h], [stats.band[x] for x in h]),
        )
        axis.set_xscale("log", base=2)
        _label_panel(axis, cell.label, "task horizon H", "test success")
    return _save_over_verdict_seeds(figure, summary, "closed-loop success at the chosen lr", path)


def plot_budget(summary: StudySummary, path: Path) -> Path:
    """Per cell: test AUC of the verdict runs at each budget checkpoint vs training step."""
    figure, panels, colours = _panels(summary)
    for axis, cell in panels:
        _tuned_curves(
            axis,
            cell,
            colours,
            lambda stats: (
                list(stats.budget_auc),
                list(stats.budget_auc.values()),
                list(stats.budget_band.values()),
            ),
        )
        targets = {c.sooner.target for c in cell.comparisons}
        for target in sorted(t for t in targets if t is not None):
            axis.axhline(target, color="0.4", linestyle="--", linewidth=0.8,
                         label=f"sooner target {target:.2f}")  # fmt: skip
        _label_panel(axis, cell.label, "training step", "closed-loop AUC (test)")
    return _save_over_verdict_seeds(
        figure, summary, "sooner or better? Success vs training budget", path
    )


def plot_val_loss_vs_success(summary: StudySummary, path: Path) -> Path:
    """Per cell: every tuning run (all lrs and seeds): final validation loss vs validation AUC."""
    figure, panels, colours = _panels(summary)
    for axis, cell in panels:
        scatter = cell.val_loss_vs_success
        for label in cell.tuned:
            points = [p for p in scatter.points if p.optimizer == label]
            axis.scatter(
                [p.final_val_loss for p in points],
                [p.validation_auc for p in points],
                color=colours[label],
                label=label,
                s=18,
                alpha=0.8,
            )
        rho = scatter.spearman
        title = cell.label + ("" if rho is None else f"\nSpearman ρ = {rho:+.2f}")
        _label_panel(axis, title, "final validation loss (EMA)", "closed-loop AUC (validation)")
    figure.suptitle("validation loss vs closed-loop success, every tuning run", fontsize=10)
    return _save(figure, path)


def _save_over_verdict_seeds(figure, summary: StudySummary, what: str, path: Path) -> Path:
    """Title a figure of means over the verdict seeds, and save it."""
    figure.suptitle(
        f"{summary.study}: {what}, mean over {len(summary.verdict_seeds)} verdict seeds "
        "(band: 95 % interval over seeds)",
        fontsize=10,
    )
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
