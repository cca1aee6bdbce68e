"""Scale-out: the study's trainings as `torchrun` commands, to run on GPUs or nodes elsewhere.

`dopr-robot study --export-train-commands FILE` collects the demonstrations, writes one TOML per
run under `<study>/train_configs/` and a shell script with one `torchrun ... dopr-robot train`
line per unfinished run (`--resume` where a checkpoint exists). Run the lines however the cluster
likes (a job array, `parallel`, one node each); then `dopr-robot study` with the same settings
finds the finished runs, checks that they were trained with the settings it expects, and only
evaluates.

Selection is nested, so the verdict runs exist only once the lrs are chosen: the first export
writes the tuning runs; once they are trained, the same export command evaluates them on the
validation seeds here, chooses the lrs and writes the verdict runs. DDP with N ranks gives the
same run as one process (tested to 1e-5), so where a run was trained does not change what the
study compares.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from .config import StudyConfig
from .jobs import diverged, finished_step, train_and_validate
from .plan import run_configs, tuning_runs, verdict_runs


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml(tables: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def _chosen_lrs(config: StudyConfig, root: Path, tuning: list) -> dict:
    """Evaluate finished tuning runs on the validation seeds (here) and choose the lrs; a tuning
    run still training elsewhere means no choice yet."""
    from .summary import choose_learning_rates, run_record

    for run in tuning:
        train, _ = run_configs(config, root, run)
        if finished_step(run.directory(root)) != train.steps and not diverged(run.directory(root)):
            return {}
    for run in tuning:
        train_and_validate(config, str(root.resolve()), run)  # trained: only evaluates
    records = [run_record(config, root, run) for run in tuning]
    return {key: entry["lr"] for key, entry in choose_learning_rates(config, records).items()}


def export_train_commands(config: StudyConfig, root: Path, script: Path) -> int:
    """Write the run TOMLs and the script; returns the number of commands written."""
    lines = [
        "#!/usr/bin/env bash",
        f"# Trainings of study {config.name!r} ({root}); GPUS = processes per run (torchrun).",
        "# Afterwards, `dopr-robot study` with the same settings evaluates them and reports.",
        "set -euo pipefail",
        "GPUS=${GPUS:-1}",
    ]
    written = 0
    todo = tuning_runs(config)
    if all(finished_step(r.directory(root)) is not None for r in todo):
        todo += verdict_runs(config, _chosen_lrs(config, root, todo))
    for run in todo:
        train, policy = run_configs(config, root, run)
        done = finished_step(run.directory(root))
        if done == train.steps:
            continue
        values = {k: v for k, v in train.to_dict().items() if k not in ("data", "out")}
        name = run.directory(root).relative_to(root / "runs")
        # name + ".toml", not with_suffix: "adamw-lr0.001-s1" would lose ".001-s1", and every
        # seed and lr with the same integer part would share (overwrite) one TOML
        path = root / "train_configs" / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_toml({"train": values, "policy": policy.to_dict()}))
        command = [
            "torchrun", "--standalone", "--nproc_per_node", "$GPUS",
            "-m", "dopr_robot.cli", "train", "--quiet",
            "--config", str(path), "--data", train.data, "--out", train.out,
        ]  # fmt: skip
        if done is not None:
            command.append("--resume")
        lines.append(" ".join(c if c == "$GPUS" else shlex.quote(c) for c in command))
        written += 1
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return written
