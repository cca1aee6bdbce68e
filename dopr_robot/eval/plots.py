"""Plots from results.json files: success vs task horizon (Wilson 95 % bands) beside the
continuous score vs task horizon, where the results have one."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # pyplot-free: the caller's backend is left alone


def plot_success_vs_horizon(results: list[dict], labels: list[str], path: Path) -> Path:
    """One line per (run, sampler setting) over H (log2 axis): success with its Wilson 95 %
    band on the left, the mean score on the right (drawn when every cell has one)."""
    scored = all(c.get("mean_score") is not None for r in results for c in r["cells"])
    figure = Figure(figsize=(11 if scored else 6, 4), dpi=120)
    axes = figure.subplots(1, 2 if scored else 1, squeeze=False)[0]
    for result, name in zip(results, labels, strict=True):
        by_steps: dict = {}
        for cell in result["cells"]:
            by_steps.setdefault(cell["inference_steps"], []).append(cell)
        for steps, cells in by_steps.items():
            cells = sorted(cells, key=lambda c: c["task_horizon"])
            h = [c["task_horizon"] for c in cells]
            line_label = name if len(by_steps) == 1 else f"{name} ({steps} steps)"
            rates = [c["success_rate"] for c in cells]
            (line,) = axes[0].plot(h, rates, marker="o", label=line_label)
            axes[0].fill_between(
                h,
                [c["wilson_low"] for c in cells],
                [c["wilson_high"] for c in cells],
                color=line.get_color(),
                alpha=0.2,
            )
            if scored:
                scores = [c["mean_score"] for c in cells]
                axes[1].plot(h, scores, marker="o", color=line.get_color(), label=line_label)
    ylabels = ["closed-loop success (Wilson 95 %)", "mean score (the field's metric)"]
    for axis, ylabel in zip(axes, ylabels, strict=False):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("task horizon H")
        axis.set_ylabel(ylabel)
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
