"""Scale-out: the study's trainings as `torchrun` commands, to run on GPUs or nodes elsewhere.

`dopr-robot study --export-train-commands FILE` collects the demonstrations, writes one TOML per
run under `<study>/train_configs/` and a shell script with one `torchrun ... dopr-robot train`
line per unfinished run (`--resume` where a checkpoint exists). Run the lines however the cluster
likes (a job array, `parallel`, one node each); then `dopr-robot study` with the same settings
finds the finished runs, checks that they were trained with the settings it expects, and only
evaluates. DDP with N ranks gives the same run as one process (tested to 1e-5), so where a run was
trained does not change what the study compares.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from .config import StudyConfig
from .jobs import finished_step
from .plan import run_configs, runs


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
    for run in runs(config):
        train, policy = run_configs(config, root, run)
        done = finished_step(run.directory(root))
        if done == train.steps:
            continue
        values = {k: v for k, v in train.to_dict().items() if k not in ("data", "out")}
        path = root / "train_configs" / run.directory(root).relative_to(root / "runs")
        path = path.with_suffix(".toml")
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
