"""Exported training commands: the TOMLs round-trip, the tuning runs come first and the verdict
runs once they are trained, a run trained from its exported command is used by the study as is,
and a run trained with other settings is refused."""

from __future__ import annotations

import json
import shlex
import tomllib

import pytest

from dopr_robot.cli import main
from dopr_robot.errors import UserError
from dopr_robot.study.config import study_from_dict
from dopr_robot.study.export import _toml
from dopr_robot.study.plan import run_configs, tuning_runs
from dopr_robot.study.runner import run_study

from .conftest import minimal_study

TINY_TRAIN = {"steps": 4, "batch_size": 8, "warmup_steps": 1, "val_every": 4,
              "checkpoint_every": 4, "log_every": 2}  # fmt: skip


def _tiny_study():
    return study_from_dict(
        minimal_study(
            tuning_seeds=1,
            verdict_seeds=2,
            budget=[0.5, 1.0],
            workers=1,
            videos=False,
            train=TINY_TRAIN,
            policy={"mlp_width": 16, "mlp_depth": 1, "pred_horizon": 4, "action_horizon": 2},
            optimizers={"adamw": {"lr": [1e-3]}, "dopr-adamw": {"lr": [1e-3]}},
            tasks=[
                {
                    "name": "balance",
                    "env_id": "dopr_robot/Balance-v0",
                    "demos": 3,
                    "collect_horizon": 30,
                    "horizons": [5, 10],
                    "execute": 1,
                    "validation_episodes": 2,
                    "test_episodes": 2,
                }
            ],
        )
    )


def test_run_settings_round_trip_through_toml(tmp_path):
    config = study_from_dict(minimal_study())
    train, policy = run_configs(config, tmp_path, tuning_runs(config)[0])
    train_values = {**train.to_dict(), "optimizer_kwargs": {"gamma": 0.3, "statistic": "batch"}}
    tables = {"train": train_values, "policy": policy.to_dict()}
    assert tomllib.loads(_toml(tables)) == tables


def test_exported_command_trains_the_run_the_study_then_uses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config_path = tmp_path / "tiny.toml"
    config = _tiny_study()
    config_path.write_text(_study_toml(config))
    script = tmp_path / "train.sh"
    argv = ["study", "--config", str(config_path), "--out", "study", "--quiet"]
    export = [*argv, "--export-train-commands", str(script)]

    def exported() -> list[list[str]]:
        assert main(export) == 0
        lines = script.read_text().splitlines()
        # each command as one process (torchrun with one rank runs the same code)
        commands = [
            shlex.split(line.replace("$GPUS", "1")) for line in lines if line.startswith("torchrun")
        ]
        return [words[words.index("train") :] for words in commands]

    tuning = exported()
    assert len(tuning) == len(tuning_runs(config)) == 2  # the verdict runs are not known yet
    for command in tuning:
        assert main(command) == 0
    verdict = exported()  # evaluates the tuning runs here, chooses the lrs
    assert len(verdict) == 2 * 2 and all("-s0/" not in " ".join(c) for c in verdict)
    assert main(verdict[0]) == 0
    out = verdict[0][verdict[0].index("--out") + 1]
    model = tmp_path / out / "checkpoints" / "step_0000004" / "model.safetensors"
    stamp = model.stat().st_mtime_ns
    assert main(argv) == 0
    assert model.stat().st_mtime_ns == stamp  # trained elsewhere, not again
    assert (tmp_path / "study" / "report.md").exists()


def test_a_run_trained_with_other_settings_is_refused(tmp_path):
    config = _tiny_study()
    run_study(config, tmp_path / "s", progress=False)
    run = tuning_runs(config)[0]
    saved = run.directory(tmp_path / "s") / "config.json"
    record = json.loads(saved.read_text())
    record["train"]["lr"] = 0.5
    saved.write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"other train settings \(lr\)"):
        run_study(config, tmp_path / "s", progress=False)


def _study_toml(config) -> str:
    """The tiny study as a TOML file (the CLI reads files)."""
    values = config.to_dict()
    lines = []
    keys = ("name", "tuning_seeds", "verdict_seeds", "budget", "workers", "videos", "policies",
            "conditioning")  # fmt: skip
    for key in keys:
        lines.append(f"{key} = {json.dumps(values[key])}")
    lines.append(f"pairs = {json.dumps([list(p) for p in config.pairs])}")
    for label, spec in config.optimizers.items():
        lines += [f'[optimizers."{label}"]', f"lr = {json.dumps(spec.lr)}"]
    lines.append("[train]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in config.train.items()]
    lines.append("[policy]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in config.policy.items()]
    task = values["tasks"][0]
    lines.append("[[tasks]]")
    lines += [
        f"{k} = {json.dumps(v)}"
        for k, v in task.items()
        if v is not None and not isinstance(v, dict)
    ]
    return "\n".join(lines) + "\n"
