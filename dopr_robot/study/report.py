"""report.md: the verdict in words first, then the tables, figures, videos and versions behind it.

Everything comes from `summarise` (itself read from the runs' files) as a `StudySummary`
(`records.py`); nothing is typed by hand. `verdict_lines` and `cell_table` are shared with the
README's generated results section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import StudyConfig
from .figures import plot_budget, plot_success_grid, plot_val_loss_vs_success
from .records import (
    Aggregate,
    Cell,
    Comparison,
    SoonerAggregate,
    StudySummary,
    TunedComplete,
    TunedIncomplete,
)

SUCCESS_PLOT = "plots/success_vs_horizon.png"
BUDGET_PLOT = "plots/success_vs_budget.png"
SCATTER_PLOT = "plots/val_loss_vs_success.png"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}" if abs(value) >= 1e-3 else f"{value:.2e}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _seed_range(seeds: list[int]) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


def aggregate_lines(summary: StudySummary) -> list[str]:
    """Per pair, two lines across cells: sooner (counts, pooled speed-up) and better (counts,
    probability of improvement, mean difference)."""
    lines = []
    for row in summary.aggregate:
        lines += _aggregate_pair(row)
    return lines


def _aggregate_pair(row: Aggregate) -> list[str]:
    base, candidate = row.base, row.candidate
    soon = row.sooner or SoonerAggregate()  # an aggregate written before sooner existed
    counts = ", ".join(f"{n} × {verdict}" for verdict, n in soon.verdicts.items())
    speed = _speedup_text(soon.speedup_median, soon.speedup_ci)
    better = ", ".join(f"{n} {verdict}" for verdict, n in row.verdicts.items())
    poi, poi_ci = row.probability_of_improvement, row.probability_of_improvement_ci
    diff, diff_ci = row.mean_auc_difference, row.mean_auc_difference_ci
    return [
        f"**Sooner — {candidate} vs {base}, across {row.cells} cells** (time to 80 % of "
        f"the base's tuning AUC, exact sign test of who got there first per seed, Holm over "
        f"the cells): {counts}. Speed-up steps({base}) / steps({candidate}) over "
        f"{soon.speedup_pairs} seeds: {speed}.",
        f"**Better — {candidate} vs {base}, across {row.cells} cells** (final test AUC, "
        f"only where both optimizers have plateaued; Holm over those cells): {better}. "
        f"Probability of improvement P({candidate} run > {base} run) = {poi:.2f} "
        f"[{poi_ci[0]:.2f}, {poi_ci[1]:.2f}] (0.5 = neither) and mean paired AUC difference "
        f"{diff:+.3f} [{diff_ci[0]:+.3f}, {diff_ci[1]:+.3f}] at the last checkpoint, over "
        "all cells, converged or not (95 % paired stratified bootstrap).",
    ]


def _speedup_text(median: float | None, interval) -> str:
    if median is None:
        return "none (no cell has a target both could be timed against)"

    def times(value: float) -> str:
        if value == float("inf"):
            return "∞ (base never reached it)"
        return "0× (candidate never reached it)" if value == 0 else f"{value:.2f}×"

    if interval is None:
        return f"median {times(median)} (too few seeds for an interval)"
    low, high = interval
    return f"median {times(median)} [{times(low)}, {times(high)}] (order-statistic 95 %)"


def _data_sentence(summary: StudySummary) -> str:
    """Which demonstrations the verdict's variation covers (`data_seeds`)."""
    if summary.data_seeds:
        return (
            "Each verdict seed trained on its own demonstration set (data_seeds = true), so "
            "the intervals cover the variation between demonstration sets too."
        )
    return (
        "Every run of a task trained on the same demonstrations (data_seeds = false): the "
        "intervals cover training seeds, not other demonstration sets."
    )


def verdict_lines(summary: StudySummary) -> list[str]:
    """The verdict in words: the aggregate, then per cell and pair the AUC test's sentence and
    how the difference moves with the training budget."""
    tuning, verdict = summary.tuning_seeds, summary.verdict_seeds
    lines = [
        *aggregate_lines(summary),
        "",
        f"Tuning seeds {_seed_range(tuning)} chose each optimizer's lr per cell (validation "
        f"episode seeds); the verdict runs are fresh training seeds {_seed_range(verdict)} at "
        "those lrs, evaluated on the test episode seeds, paired by seed across optimizers. No "
        f"network that took part in the choice is in the verdict. {_data_sentence(summary)} "
        f"Every run trained {summary.steps or '?'} steps.",
        "",
    ]
    lines += _caution_lines(summary)
    lines += _tuning_lines(summary)
    for cell in summary.cells:
        if not cell.comparisons:
            lines.append(f"- **{cell.label}**: incomplete (some runs are not evaluated yet).")
        for comparison in cell.comparisons:
            lines.append(f"- **{cell.label}**: " + sooner_sentence(comparison))
            lines.append("  - " + better_sentence(comparison))
            lines.append("  - " + trend_sentence(comparison))
    if summary.diverged_runs:
        lines += [
            "",
            f"Diverged runs (counted as failing every episode): {len(summary.diverged_runs)}.",
        ]
    return lines


def _caution_lines(summary: StudySummary) -> list[str]:
    """The lrs chosen at an end of their grid that beat their neighbour (`lr_at_edge`)."""
    edges = [
        f"{label} chose the {stats.lr_at_edge} lr of its grid in {cell.label} "
        f"(tuning AUC {_grid_text(stats)})"
        for cell in summary.cells
        for label, stats in cell.tuned.items()
        if stats.lr_at_edge
    ]
    if not edges:
        return []
    margin = (
        "by more than one standard error over tuning seeds"
        if len(summary.tuning_seeds) > 1
        else "by more than one standard error of the validation episodes' noise: with one "
        "tuning seed, seed noise cannot be estimated and is not allowed for"
    )
    return [
        f"**Caution, possibly not tuned** (the chosen lr beats its neighbour {margin}): "
        + "; ".join(edges)
        + ". A better lr may lie outside the grid.",
        "",
    ]


def _tuning_lines(summary: StudySummary) -> list[str]:
    """Grid extensions, and how flat each tuning curve was (max − min validation AUC)."""
    lines = []
    labels = {cell.key: cell.label for cell in summary.cells}
    extensions = [
        f"{e.optimizer} in {labels.get(e.cell, e.cell)} (added lr "
        + ", ".join(f"{lr:g}" for lr in e.added)
        + ")"
        for e in summary.grid_extensions
    ]
    if extensions:
        lines += [
            "**Grids extended** (the chosen lr was at an end of its grid and beat its "
            f"neighbour; at most two points per grid): {'; '.join(extensions)}.",
            "",
        ]
    spreads = []
    for cell in summary.cells:
        for label, stats in cell.tuned.items():
            known = [e.validation_auc for e in stats.lr_grid if e.validation_auc is not None]
            if len(known) > 1:
                spreads.append(f"{cell.label} {label} {max(known) - min(known):.2f}")
    if spreads:
        lines += [
            "Tuning curves, max − min validation AUC over each grid (near 0: the lr choice "
            f"made no difference there): {'; '.join(spreads)}.",
            "",
        ]
    return lines


def sooner_sentence(comparison: Comparison) -> str:
    base, candidate, soon = comparison.base, comparison.candidate, comparison.sooner
    if soon.target is None:
        return f"sooner: {soon.verdict}."
    speed = _speedup_text(soon.speedup_median, soon.speedup_ci)
    return (
        f"sooner: **{soon.verdict}** (target test AUC {soon.target:.2f}; first to reach "
        f"it: {candidate} in {soon.first_candidate}, {base} in {soon.first_base}, "
        f"tied in {soon.ties} of {len(soon.steps_base)} seeds; sign-test p = "
        f"{soon.p:.3g}, Holm {soon.holm_p:.3g}; speed-up {speed})."
    )


def better_sentence(comparison: Comparison) -> str:
    auc = comparison.auc
    test = (
        f", permutation p = {auc.permutation_p:.3g}, Holm over {auc.tests_in_family} "
        f"converged cells = {auc.holm_p:.3g}"
        if auc.holm_p is not None
        else ""
    )
    return (
        f"better: **{auc.verdict}** (final test AUC {auc.mean_candidate:.2f} vs "
        f"{auc.mean_base:.2f}, paired difference {auc.mean_difference:+.3f}, 90 % CI "
        f"[{auc.ci90[0]:+.3f}, {auc.ci90[1]:+.3f}], {auc.wins} wins / {auc.ties} "
        f"ties / {auc.losses} losses{test}; {_plateau_text(comparison)})."
    )


def _plateau_text(comparison: Comparison) -> str:
    """The plateau check behind "better": each optimizer's change over the last two checkpoints,
    or, with one budget checkpoint, that there was nothing to check."""
    plateau, margin = comparison.plateau, comparison.auc.margin
    if not plateau.base.checked:
        return (
            f"one budget checkpoint (step {plateau.base.steps[1]}) allows no plateau check, so "
            f"neither optimizer is taken as plateaued (give the study's budget two or more points)"
        )
    steps = plateau.base.steps
    changes = "; ".join(
        f"{name} {entry.change:+.3f} [{entry.ci[0]:+.3f}, {entry.ci[1]:+.3f}]"
        for name, entry in (
            (comparison.base, plateau.base),
            (comparison.candidate, plateau.candidate),
        )
    )
    return (
        f"change from step {steps[0]} to {steps[1]}, 95 % CI, plateau when within "
        f"±{margin:g}: {changes}"
    )


def trend_sentence(comparison: Comparison) -> str:
    trend = comparison.trend
    if trend.first_step == trend.last_step:
        return (
            f"budget: {trend.words} (paired difference {trend.first_difference:+.2f} "
            f"[{trend.first_ci[0]:+.2f}, {trend.first_ci[1]:+.2f}] at step {trend.first_step}, "
            "per-seed 95 % CI)."
        )
    return (
        f"budget: {trend.words} (paired difference {trend.first_difference:+.2f} "
        f"[{trend.first_ci[0]:+.2f}, {trend.first_ci[1]:+.2f}] at step "
        f"{trend.first_step}, changing by {trend.change:+.2f} [{trend.change_ci[0]:+.2f}, "
        f"{trend.change_ci[1]:+.2f}] by step {trend.last_step}, per-seed 95 % CI)."
    )


def _grid_text(stats: TunedIncomplete) -> str:
    """'0.38 / 0.41 / **0.43** at lr 0.003 / 0.01 / 0.03', the chosen one in bold."""
    grid = sorted(stats.lr_grid, key=lambda entry: entry.lr)
    values = [
        f"**{_rate(e.validation_auc)}**" if e.lr == stats.lr else _rate(e.validation_auc)
        for e in grid
    ]
    return " / ".join(values) + " at lr " + " / ".join(f"{e.lr:g}" for e in grid)


def cell_table(cell: Cell) -> list[str]:
    """One row per optimizer at its chosen lr: success per H, AUC, H@0.5, val losses."""
    horizons = cell.horizons
    header = (
        "| optimizer | lr (chosen) | "
        + " | ".join(f"H={h}" for h in horizons)
        + " | AUC | H@0.5 | best val loss | final val loss |"
    )
    lines = [header, "|" + "---|" * (len(horizons) + 6)]
    for label, stats in cell.tuned.items():
        if not isinstance(stats, TunedComplete):
            lines.append(f"| {label} | {_fmt(stats.lr)} | " + "– | " * (len(horizons) + 4))
            continue
        success = " | ".join(
            f"{_rate(stats.success[h])} [{_rate(stats.band[h][0])}, {_rate(stats.band[h][1])}]"
            for h in horizons
        )
        level = stats.h_at_half
        at = "> max H" if level is None else "< min H" if level == 0 else f"{level:.1f}"
        lines.append(
            f"| {label} | {stats.lr:g} | {success} | {_rate(stats.auc)} | {at} | "
            f"{_fmt(stats.best_val_loss)} | {_fmt(stats.final_val_loss)} |"
        )
    return lines


def _difference_table(comparison: Comparison) -> list[str]:
    lines = [
        f"Paired differences, {comparison.candidate} − {comparison.base} (verdict seeds, "
        "test episodes). Per-H rows are descriptive (uncorrected p); the AUC row is the cell's "
        "test:",
        "",
        "| H | base | candidate | mean diff | 95 % CI | wins/ties/losses | permutation p "
        "| sign-test p | Holm p | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(row.task_horizon, row, None, "") for row in comparison.per_horizon]
    auc = comparison.auc
    for name, row, holm, verdict in [*rows, ("AUC", auc, auc.holm_p, auc.verdict)]:
        lines.append(
            f"| {name} | {row.mean_base:.2f} | {row.mean_candidate:.2f} | "
            f"{row.mean_difference:+.3f} | [{row.ci_low:+.3f}, {row.ci_high:+.3f}] | "
            f"{row.wins}/{row.ties}/{row.losses} | {row.permutation_p:.3f} | "
            f"{row.sign_test_p:.3f} | {'' if holm is None else f'{holm:.3f}'} | "
            f"{verdict} |"
        )
    return lines


def _budget_table(cell: Cell) -> list[str]:
    """Test AUC of the verdict runs at each budget checkpoint, per optimizer, and the paired
    difference."""
    steps = cell.budget_steps
    lines = [
        "| optimizer | " + " | ".join(f"step {s}" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for label, stats in cell.tuned.items():
        if not isinstance(stats, TunedComplete):
            continue
        values = [
            f"{stats.budget_auc[s]:.2f} [{stats.budget_band[s][0]:.2f}, "
            f"{stats.budget_band[s][1]:.2f}]"
            for s in steps
        ]
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    for comparison in cell.comparisons:
        lines.append(
            f"| {comparison.candidate} − {comparison.base} | "
            + " | ".join(
                f"{row.mean_difference:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]"
                for row in comparison.budget
            )
            + " |"
        )
    return lines


def _selection_table(cell: Cell) -> list[str]:
    lrs = sorted({entry.lr for stats in cell.tuned.values() for entry in stats.lr_grid})
    lines = [
        "| optimizer | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " |",
        "|---|" + "---|" * len(lrs),
    ]
    for label, stats in cell.tuned.items():
        grid = {entry.lr: entry.validation_auc for entry in stats.lr_grid}
        values = []
        for lr in lrs:
            text = _rate(grid.get(lr)) if lr in grid else ""
            values.append(f"**{text}**" if lr == stats.lr else text)
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return lines


def _robustness_table(cell: Cell) -> list[str]:
    horizons = cell.horizons
    lines = [
        "| optimizer | " + " | ".join(f"H={h}" for h in horizons) + " |",
        "|---|" + "---|" * len(horizons),
    ]
    for label, rates in cell.robustness.items():
        values = ["–"] * len(horizons) if rates is None else [_rate(rates[h]) for h in horizons]
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return lines


def _video_links(cell: Cell, root: Path) -> list[str]:
    links = []
    for label, stats in cell.tuned.items():
        if not isinstance(stats, TunedComplete):
            continue
        videos = sorted((root / stats.test_dirs[0] / "videos").glob("H*.mp4"))
        if videos:
            parts = ", ".join(
                f"[H={int(v.stem[1:])}]({v.relative_to(root).as_posix()})" for v in videos
            )
            links.append(f"- {label} (the first verdict seed): {parts}")
    return links


def recorded_versions(summary: StudySummary, root: Path) -> dict[str, Any]:
    """The versions the first complete verdict run's test evaluation recorded in results.json
    (what the study's numbers were computed with; `provenance.versions` is this process's)."""
    for cell in summary.cells:
        for stats in cell.tuned.values():
            if isinstance(stats, TunedComplete):
                results = json.loads((root / stats.test_dirs[0] / "results.json").read_text())
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
        + f". Training seeds: {config.tuning_seeds} tuning seeds per (optimizer, lr), then "
        f"{config.verdict_seeds} fresh verdict seeds at each chosen lr; budget checkpoints at "
        f"{', '.join(f'{f:g}' for f in config.budget)} of the training steps.",
        f"- Shared training settings: `{json.dumps(config.train)}`; policy: "
        f"`{json.dumps(config.policy)}`; per-task overrides in study.json.",
    ]
    if config.expected_minutes:
        lines.append(f"- Sized for: {config.expected_minutes}.")
    return lines


def wall_time(summary: StudySummary) -> str:
    """Total wall time over the invocations that built the study (reruns skip finished work)."""
    invocations = summary.invocations
    minutes = sum(i.seconds for i in invocations) / 60
    return f"{minutes:.1f} min over {len(invocations)} invocation(s)"


def stage_breakdown(summary: StudySummary) -> str:
    """Minutes per stage, summed over the invocations (where the study's time went), then the
    workers' minutes per kind of work within the tune and verdict stages."""
    totals: dict[str, float] = {}
    work: dict[str, dict[str, float]] = {}
    for invocation in summary.invocations:
        for stage, seconds in invocation.stages.items():
            totals[stage] = totals.get(stage, 0.0) + seconds
        for stage, kinds in invocation.worker_seconds.items():
            for kind, seconds in kinds.items():
                work.setdefault(stage, {})[kind] = work.get(stage, {}).get(kind, 0.0) + seconds
    text = "; ".join(f"{stage} {seconds / 60:.1f} min" for stage, seconds in totals.items())
    if work:
        parts = [
            f"{stage}: " + ", ".join(f"{kind} {s / 60:.1f}" for kind, s in kinds.items())
            for stage, kinds in work.items()
        ]
        text += f" (worker minutes, summed over workers: {'; '.join(parts)})"
    return text


def _per_cell(summary: StudySummary, table) -> list[str]:
    """Each cell's label in bold, then its table."""
    lines = []
    for cell in summary.cells:
        lines += [f"**{cell.label}**", "", *table(cell), ""]
    return lines


def _metric_sentence(metric: str) -> str:
    """What every success column, AUC and test of the report is computed from."""
    what = "success rate" if metric == "success" else "mean score"
    detail = (
        " (the field's continuous score: PushT's best coverage / 0.95, robosuite's shaped "
        "progress, the share of sub-goals done)"
        if metric == "score"
        else ""
    )
    return (
        f'The study\'s metric is the **{metric}** (`metric = "{metric}"`): every success column, '
        f"AUC and test below is of the per-episode {what}{detail}, averaged per H. "
    )


def write_report(config: StudyConfig, root: Path, summary: StudySummary) -> Path:
    """report.md and its three figures under `root`: the verdict, the per-H results per cell,
    the budget axis, the lr choice, robustness, loss vs success, setup and versions."""
    plot_success_grid(summary, root / SUCCESS_PLOT)
    plot_budget(summary, root / BUDGET_PLOT)
    plot_val_loss_vs_success(summary, root / SCATTER_PLOT)
    lines = [f"# DoPr study `{config.name}`", "", "## Verdict", "", *verdict_lines(summary), ""]
    lines += _horizon_section(config, root, summary)
    lines += _tuning_sections(summary)
    lines += _scatter_section(summary)
    lines += [
        "## Setup",
        "",
        *_setup(config),
        f"- Wall time: {wall_time(summary)} of `dopr-robot study` (a rerun skips finished "
        f"work, so the sum is the study's cost): {stage_breakdown(summary)}.",
        "",
        "## Versions",
        "",
        *[f"- {name}: {value}" for name, value in recorded_versions(summary, root).items()],
        "",
    ]
    path = root / "report.md"
    path.write_text("\n".join(lines))
    return path


def _horizon_section(config: StudyConfig, root: Path, summary: StudySummary) -> list[str]:
    """Success vs H: the figure, how to read the numbers, then per cell its tables and videos."""
    measured = "success rate" if config.metric == "success" else "mean score"
    lines = [
        f"## Closed-loop {measured} vs task horizon (verdict runs, test episode seeds)",
        "",
        f"![{measured} vs H]({SUCCESS_PLOT})",
        "",
        _metric_sentence(config.metric)
        + "Success is the mean over verdict seeds of each run's test success; brackets and bands "
        "are 95 % intervals over verdict seeds (Student's t, joined with the pooled "
        "Clopper–Pearson interval over the episodes and a bound for seeds at the ceiling; every "
        "seed at 1 gives [0.025^(1/n), 1]: coverage checked against known truths in "
        "tests/study/test_known_truth.py). AUC is the area under success over log2 H (1 = "
        "perfect everywhere); H@0.5 is where mean success falls below 0.5 (an absolute level, "
        "so it compares across optimizers). Validation losses are the EMA weights' held-out "
        "loss. Differences: 95 % t intervals over pairs (±(1 − 0.025^(1/n)) when every pair "
        "ties).",
        "",
    ]
    for cell in summary.cells:
        lines += [f"### {cell.label}", "", *cell_table(cell), ""]
        for comparison in cell.comparisons:
            lines += [*_difference_table(comparison), ""]
        lines += [
            "Success vs training budget (verdict runs, test episode seeds, AUC with 95 % "
            "intervals over seeds; the last step is the verdict's own evaluation; last row: the "
            "paired difference):",
            "",
            *_budget_table(cell),
            "",
        ]
        videos = _video_links(cell, root)
        if videos:
            lines += ["Rollout videos (failed episodes first, then successes):", "", *videos, ""]
    return lines


def _tuning_sections(summary: StudySummary) -> list[str]:
    """The budget figure, then the lr choice and the robustness over the lr grid per cell."""
    lines = [
        "## Sooner or better: success vs training budget",
        "",
        f"![success vs budget]({BUDGET_PLOT})",
        "",
        "## Learning-rate selection (tuning runs, validation episode seeds)",
        "",
        "Mean validation AUC over tuning seeds for every lr in the grid; the chosen lr in bold.",
        "",
    ]
    lines += _per_cell(summary, _selection_table)
    lines += [
        "## Robustness: success averaged over the whole lr grid (tuning runs)",
        "",
        "Not the tuned comparison: this asks how much an optimizer depends on getting its "
        "learning rate right. Mean over every lr and tuning seed, validation episode seeds.",
        "",
    ]
    return lines + _per_cell(summary, _robustness_table)


def _scatter_section(summary: StudySummary) -> list[str]:
    """Validation loss vs closed-loop success: the figure and Spearman's rho per cell."""
    rhos = "; ".join(
        f"{cell.label}: " + _rho_text(cell.val_loss_vs_success.spearman) for cell in summary.cells
    )
    return [
        "## Validation loss vs closed-loop success",
        "",
        f"![val loss vs success]({SCATTER_PLOT})",
        "",
        f"Every tuning run (all lrs and seeds). Spearman ρ per cell: {rhos}. A strongly "
        "negative ρ would mean lower loss ⇒ higher success.",
        "",
    ]


def _rho_text(rho: float | None) -> str:
    return "–" if rho is None else f"{rho:+.2f}"
