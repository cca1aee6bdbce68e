"""A run directory's layout (`RunDir`) and the one "is this the same run?" comparison."""

from __future__ import annotations

import json

import pytest

from dopr_robot.errors import UserError
from dopr_robot.train import RunDir
from dopr_robot.train.run_dir import differing_run_settings, with_old_meanings


def test_the_layout_is_named_in_one_place(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.config == tmp_path / "run" / "config.json"
    assert run.metrics == tmp_path / "run" / "metrics.jsonl"
    checkpoint = run.checkpoint(1000)
    assert checkpoint == tmp_path / "run" / "checkpoints" / "step_0001000"
    assert RunDir.of_checkpoint(checkpoint) == run
    assert run.sweep_dir(checkpoint, "test") == tmp_path / "run" / "eval" / "step_0001000-test"
    assert run.eval_dir("validation") == tmp_path / "run" / "eval" / "validation"


def test_only_finished_checkpoints_count_newest_by_step(tmp_path):
    run = RunDir(tmp_path)
    assert run.checkpoints_newest_first() == [] and run.latest_checkpoint() is None
    for name in ("step_0000001", "step_0000010", "step_10000000", "step_0000010.broken",
                 ".step_0000020.1a2b3c4d.partial", "notes"):  # fmt: skip
        (run.checkpoints / name).mkdir(parents=True)
    assert [p.name for p in run.checkpoints_newest_first()] == [
        "step_10000000",
        "step_0000010",
        "step_0000001",
    ]
    assert run.latest_checkpoint() == run.checkpoint(10_000_000)


def test_a_missing_or_broken_config_is_one_sentence(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(UserError, match="is not a training run"):
        run.read_config()
    run.config.write_text("{")
    with pytest.raises(UserError, match="config.json is not valid JSON"):
        run.read_config()


def _saved(**train) -> dict:
    return {
        "policy": {"kind": "flow", "obs_keys": ["state"], "image_norm": "group"},
        "train": {"data": "/a/data/x.zarr", "out": "/a/runs/r", "steps": 10, **train},
        "shape_meta": {"obs": {"state": [4]}, "action_dim": 2},
    }


def test_same_run_settings_compare_by_meaning_and_place():
    saved = _saved(lr=1.0)
    mine = _saved(lr=1.0, fast_path=False)
    # a setting added since the run was written takes the meaning it had then
    assert differing_run_settings(saved, {"train": mine["train"]}) is None
    assert differing_run_settings(saved, {"train": {**mine["train"], "fast_path": True}}) == (
        "train",
        ["fast_path"],
    )
    # moved with its data: the same run; `steps` compared unless a resume may extend it
    moved = {**mine["train"], "data": "/b/data/x.zarr", "out": "/b/runs/r", "steps": 20}
    assert differing_run_settings(saved, {"train": moved}) == ("train", ["steps"])
    assert differing_run_settings(saved, {"train": moved}, train_ignored=("steps",)) is None
    # the first section that differs, in the caller's order
    other = {"policy": {**saved["policy"], "kind": "diffusion"}, "train": {**moved, "lr": 2.0}}
    assert differing_run_settings(saved, other) == ("policy", ["kind"])
    assert differing_run_settings(saved, dict(reversed(other.items()))) == (
        "train",
        ["lr", "steps"],
    )


def test_old_meanings_fill_only_what_is_missing():
    saved = json.loads(json.dumps(_saved()))
    del saved["policy"]["image_norm"]
    values = with_old_meanings(saved)
    assert values["train"]["fast_path"] is False and values["policy"]["image_norm"] == "batch"
    assert with_old_meanings(_saved(fast_path=True))["train"]["fast_path"] is True
    assert "image_norm" not in saved["policy"]  # the caller's dict is left as it was
