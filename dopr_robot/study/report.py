"""report.md: the verdict in words first, then the tables, figures, videos and versions behind it.

Everything comes from `summarise` (itself read from the runs' files); nothing is typed by hand.
`verdict_lines` and `cell_table` are shared with the README's generated results section.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .config import StudyConfig
from .figures import plot_success_grid, plot_val_loss_vs_success
from .paired import PairedComparison

SUCCESS_PLOT = "plots/success_vs_horizon.png"
SCATTER_PLOT = "plots/val_loss_vs_success.png"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}" if abs(value) >= 1e-3 else f"{value:.2e}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _comparison(values: dict) -> PairedComparison:
    return PairedComparison(**{k: v for k, v in values.items() if k != "task_horizon"})


def verdict_counts(summary: dict) -> Counter:
    return Counter(
        row["verdict"]
        for cell in summary["cells"]
        for comparison in cell["comparisons"]
        for row in comparison["per_horizon"]
    )


def verdict_lines(summary: dict) -> list[str]:
    """The verdict in words: a count, then per cell and pair the AUC sentence and one per H."""
    counts = verdict_counts(summary)
    total = sum(counts.values())
    order = ("better", "worse", "no detectable difference", "too few seeds to tell")
    lines = [
        f"Over {total} comparisons (cell × task horizon, test seeds, each optimizer at the "
        "learning rate it chose on the validation seeds, paired by training seed, every run "
        f"trained {summary.get('steps', '?')} steps): "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in order)
        + ".",
        "",
    ]
    edges = [
        f"{label} chose the {stats['lr_at_edge']} lr of its grid in {cell['label']} "
        f"(validation AUC {_grid_text(stats)})"
        for cell in summary["cells"]
        for label, stats in cell["tuned"].items()
        if stats.get("lr_at_edge")
    ]
    if edges:
        lines += [
            "**Caution, possibly not tuned:** "
            + "; ".join(edges)
            + ". A better lr may lie outside the grid; widen it before trusting a verdict that "
            "involves these.",
            "",
        ]
    for cell in summary["cells"]:
        if not cell["comparisons"]:
            lines.append(f"- **{cell['label']}**: incomplete (some runs are not evaluated yet).")
        for comparison in cell["comparisons"]:
            base, candidate = comparison["base"], comparison["candidate"]
            auc = _comparison(comparison["auc"])
            lines.append(f"- **{cell['label']}**: " + auc.sentence(candidate, base, "AUC over H"))
            for row in comparison["per_horizon"]:
                where = f"H = {row['task_horizon']}"
                lines.append("  - " + _comparison(row).sentence(candidate, base, where))
    if summary["diverged_runs"]:
        lines += [
            "",
            f"Diverged runs (counted as failing every episode): {len(summary['diverged_runs'])}.",
        ]
    return lines


def _grid_text(stats: dict) -> str:
    """'0.38 / 0.41 / **0.43** at lr 0.003 / 0.01 / 0.03', the chosen one in bold."""
    grid = sorted(stats["lr_grid"], key=lambda entry: entry["lr"])
    values = [
        f"**{_rate(e['validation_auc'])}**"
        if e["lr"] == stats["lr"]
        else _rate(e["validation_auc"])
        for e in grid
    ]
    return " / ".join(values) + " at lr " + " / ".join(f"{e['lr']:g}" for e in grid)


def cell_table(cell: dict) -> list[str]:
    """One row per optimizer at its chosen lr: success per H, AUC, H50, val losses."""
    horizons = cell["horizons"]
    header = (
        "| optimizer | lr (chosen) | "
        + " | ".join(f"H={h}" for h in horizons)
        + " | AUC | H50 | best val loss | final val loss |"
    )
    lines = [header, "|" + "---|" * (len(horizons) + 6)]
    for label, stats in cell["tuned"].items():
        if not stats["complete"]:
            lines.append(f"| {label} | {_fmt(stats['lr'])} | " + "– | " * (len(horizons) + 4))
            continue
        success = " | ".join(
            f"{_rate(stats['success'][str(h)])} [{_rate(stats['band'][str(h)][0])}, "
            f"{_rate(stats['band'][str(h)][1])}]"
            for h in horizons
        )
        h50 = "> max H" if stats["h50"] is None else f"{stats['h50']:.1f}"
        lines.append(
            f"| {label} | {stats['lr']:g} | {success} | {_rate(stats['auc'])} | {h50} | "
            f"{_fmt(stats['best_val_loss'])} | {_fmt(stats['final_val_loss'])} |"
        )
    return lines


def _difference_table(comparison: dict) -> list[str]:
    lines = [
        f"Paired differences, {comparison['candidate']} − {comparison['base']} (test seeds):",
        "",
        "| H | base | candidate | mean diff | 95 % CI | wins/ties/losses | permutation p "
        "| sign-test p | MDE (80 %) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in [*comparison["per_horizon"], {**comparison["auc"], "task_horizon": "AUC"}]:
        mde = row["minimum_detectable_effect"]
        lines.append(
            f"| {row['task_horizon']} | {row['mean_base']:.2f} | {row['mean_dopr']:.2f} | "
            f"{row['mean_difference']:+.3f} | [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] | "
            f"{row['wins']}/{row['ties']}/{row['losses']} | {row['permutation_p']:.3f} | "
            f"{row['sign_test_p']:.3f} | "
            f"{'–' if mde is None else f'{mde:.2f}'} | {row['verdict']} |"
        )
    return lines


def _selection_table(cell: dict) -> list[str]:
    lrs = sorted({entry["lr"] for stats in cell["tuned"].values() for entry in stats["lr_grid"]})
    lines = [
        "| optimizer | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " |",
        "|---|" + "---|" * len(lrs),
    ]
    for label, stats in cell["tuned"].items():
        grid = {entry["lr"]: entry["validation_auc"] for entry in stats["lr_grid"]}
        values = []
        for lr in lrs:
            text = _rate(grid.get(lr)) if lr in grid else ""
            values.append(f"**{text}**" if lr == stats["lr"] else text)
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return lines


def _robustness_table(cell: dict) -> list[str]:
    horizons = cell["horizons"]
    lines = [
        "| optimizer | " + " | ".join(f"H={h}" for h in horizons) + " |",
        "|---|" + "---|" * len(horizons),
    ]
    for label, rates in cell["robustness"].items():
        values = (
            ["–"] * len(horizons) if rates is None else [_rate(rates[str(h)]) for h in horizons]
        )
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return lines


def _video_links(cell: dict, root: Path) -> list[str]:
    links = []
    for label, stats in cell["tuned"].items():
        if not stats.get("complete"):
            continue
        videos = sorted((root / stats["test_dirs"][0] / "videos").glob("H*.mp4"))
        if videos:
            parts = ", ".join(
                f"[H={int(v.stem[1:])}]({v.relative_to(root).as_posix()})" for v in videos
            )
            links.append(f"- {label} (training seed 0): {parts}")
    return links


def versions(summary: dict, root: Path) -> dict[str, Any]:
    for cell in summary["cells"]:
        for stats in cell["tuned"].values():
            if stats.get("complete"):
                results = json.loads((root / stats["test_dirs"][0] / "results.json").read_text())
                return results["versions"]
    return {}


def _setup(config: StudyConfig) -> list[str]:
    lines = [
        "| task | env | demos (H collected) | perturbation | evaluated H | executed per chunk | "
        "episodes val/test |",
        "|---|---|---|---|---|---|---|",
    ]
    from .plan import collect_config

    for task in config.tasks:
        collected = collect_config(task)
        lines.append(
            f"| {task.name} | `{task.env_id}` | {task.demos} ({task.collect_horizon}) | "
            f"{collected.perturbation:g} | {', '.join(map(str, task.horizons))} | "
            f"{task.execute or 'Ta'} | {task.validation_episodes}/{task.test_episodes} |"
        )
    grids = "; ".join(
        f"{label} = `{spec.name}`{' ' + json.dumps(spec.kwargs) if spec.kwargs else ''} "
        f"lr ∈ {{{', '.join(f'{x:g}' for x in spec.lr)}}}"
        for label, spec in config.optimizers.items()
    )
    lines += [
        "",
        f"- Policies: {', '.join(config.policies)}; conditioning factors: "
        f"{', '.join(f'{c:g}' for c in config.conditioning)} (1 = standardised inputs).",
        f"- Optimizers: {grids}. Pairs: "
        + ", ".join(f"{c} vs {b}" for b, c in config.pairs)
        + f". Training seeds: {config.seeds} per (optimizer, lr).",
        f"- Shared training settings: `{json.dumps(config.train)}`; policy: "
        f"`{json.dumps(config.policy)}`; per-task overrides in study.json.",
    ]
    if config.expected_minutes:
        lines.append(f"- Sized for: {config.expected_minutes}.")
    return lines


def wall_time(summary: dict) -> str:
    """Total wall time over the invocations that built the study (reruns skip finished work)."""
    invocations = summary.get("invocations", [])
    minutes = sum(i["seconds"] for i in invocations) / 60
    return f"{minutes:.1f} min over {len(invocations)} invocation(s)"


def _per_cell(summary: dict, table) -> list[str]:
    """Each cell's label in bold, then its table."""
    lines = []
    for cell in summary["cells"]:
        lines += [f"**{cell['label']}**", "", *table(cell), ""]
    return lines


def write_report(config: StudyConfig, root: Path, summary: dict) -> Path:
    plot_success_grid(summary, root / SUCCESS_PLOT)
    plot_val_loss_vs_success(summary, root / SCATTER_PLOT)
    lines = [f"# DoPr study `{config.name}`", "", "## Verdict", "", *verdict_lines(summary), ""]
    lines += [
        "## Closed-loop success vs task horizon (tuned learning rates, test seeds)",
        "",
        f"![success vs H]({SUCCESS_PLOT})",
        "",
        "Success is the mean over training seeds of each run's test success; brackets and bands "
        "are 95 % percentile-bootstrap intervals over training seeds. AUC is the area under "
        "success over log2 H (1 = perfect everywhere); H50 is where success falls to half its "
        "value at the shortest H. Validation losses are the EMA weights' held-out loss.",
        "",
    ]
    for cell in summary["cells"]:
        lines += [f"### {cell['label']}", "", *cell_table(cell), ""]
        for comparison in cell["comparisons"]:
            lines += [*_difference_table(comparison), ""]
        videos = _video_links(cell, root)
        if videos:
            lines += ["Rollout videos (failed episodes first, then successes):", "", *videos, ""]
    lines += [
        "## Learning-rate selection (validation seeds)",
        "",
        "Mean validation AUC over training seeds for every lr in the grid; the chosen lr in bold.",
        "",
    ]
    lines += _per_cell(summary, _selection_table)
    lines += [
        "## Robustness: success averaged over the whole lr grid (validation seeds)",
        "",
        "Not the tuned comparison: this asks how much an optimizer depends on getting its "
        "learning rate right. Mean over every lr and training seed.",
        "",
    ]
    lines += _per_cell(summary, _robustness_table)
    lines += [
        "## Validation loss vs closed-loop success",
        "",
        f"![val loss vs success]({SCATTER_PLOT})",
        "",
        "Every run (all lrs and seeds). Spearman ρ per cell: "
        + "; ".join(
            f"{cell['label']}: "
            + (
                "–"
                if cell["val_loss_vs_success"]["spearman"] is None
                else f"{cell['val_loss_vs_success']['spearman']:+.2f}"
            )
            for cell in summary["cells"]
        )
        + ". A strongly negative ρ would mean lower loss ⇒ higher success.",
        "",
        "## Setup",
        "",
        *_setup(config),
        f"- Wall time: {wall_time(summary)} of `dopr-robot study` (a rerun skips finished "
        "work, so the sum is the study's cost).",
        "",
        "## Versions",
        "",
        *[f"- {name}: {value}" for name, value in versions(summary, root).items()],
        "",
    ]
    path = root / "report.md"
    path.write_text("\n".join(lines))
    return path
