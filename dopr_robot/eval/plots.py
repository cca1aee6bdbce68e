"""Plots from results.json files: success vs task horizon, with Wilson 95 % bands."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # pyplot-free: the caller's backend is left alone


def plot_success_vs_horizon(results: list[dict], labels: list[str], path: Path) -> Path:
    """One line per (run, sampler setting): success rate over H (log2 axis), band = Wilson 95 %."""
    figure = Figure(figsize=(6, 4), dpi=120)
    axis = figure.subplots()
    for result, name in zip(results, labels, strict=True):
        by_steps: dict = {}
        for cell in result["cells"]:
            by_steps.setdefault(cell["inference_steps"], []).append(cell)
        for steps, cells in by_steps.items():
            cells = sorted(cells, key=lambda c: c["task_horizon"])
            h = [c["task_horizon"] for c in cells]
            line_label = name if len(by_steps) == 1 else f"{name} ({steps} steps)"
            (line,) = axis.plot(h, [c["success_rate"] for c in cells], marker="o", label=line_label)
            axis.fill_between(
                h,
                [c["wilson_low"] for c in cells],
                [c["wilson_high"] for c in cells],
                color=line.get_color(),
                alpha=0.2,
            )
    axis.set_xscale("log", base=2)
    axis.set_xlabel("task horizon H")
    axis.set_ylabel("closed-loop success (Wilson 95 %)")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
