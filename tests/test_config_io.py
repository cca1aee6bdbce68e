"""Typed configs: strict types, one sentence per problem, "none" for None in TOML, and a flag for
every training and policy setting."""

from __future__ import annotations

import pytest

from dopr_robot.cli import build_parser
from dopr_robot.commands.train import _parse
from dopr_robot.config_io import validated
from dopr_robot.errors import UserError
from dopr_robot.eval.config import EvalConfig
from dopr_robot.policies import PolicyConfig
from dopr_robot.train import TrainConfig


def test_none_is_written_as_a_word_in_toml():
    config = TrainConfig.from_dict(
        {"optimizer": "dopr-adamw", "optimizer_kwargs": {"max_rows": "none", "gamma": 0.3}}
    )
    assert config.optimizer_kwargs == {"max_rows": None, "gamma": 0.3}
    config.check_optimizer()  # DoPr accepts max_rows=None (all rows)
    assert EvalConfig.from_dict({"checkpoint": "x", "execute": "None"}).execute is None


def test_strict_types_and_one_sentence():
    with pytest.raises(UserError) as error:
        validated(TrainConfig, {"steps": 1.5, "lr": True}, "run.toml [train]")
    message = str(error.value)
    assert message.count("\n") == 0
    assert message.startswith(
        "run.toml [train]: lr = True is not valid (input should be"
    )  # field order
    assert message.endswith("; and 1 more problem(s)")
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0  # an integer where a float belongs is fine


def test_every_training_and_policy_setting_is_a_train_flag():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = {option for action in train._actions for option in action.option_strings}
    for name in TrainConfig.model_fields:
        assert "--" + name.replace("_", "-") in flags, name
    for name in PolicyConfig.model_fields:
        assert ("--policy" if name == "kind" else "--" + name.replace("_", "-")) in flags, name


def test_flag_text_is_read_as_the_field_type():
    fields = {**TrainConfig.model_fields, **PolicyConfig.model_fields}
    assert _parse(fields["steps"].annotation, "10") == 10
    assert _parse(fields["lr"].annotation, "3e-4") == 3e-4
    assert _parse(fields["optimizer"].annotation, "dopr-adamw") == "dopr-adamw"
    assert _parse(fields["device"].annotation, "inf") == "inf"  # a word stays a word
    assert _parse(fields["obs_keys"].annotation, "state, image") == ["state", "image"]
    assert _parse(fields["unet_down_dims"].annotation, "32,64") == [32, 64]
    assert _parse(fields["optimizer_kwargs"].annotation, "{gamma = 0.3}") == {"gamma": 0.3}
    assert _parse(fields["steps"].annotation, "ten") == "ten"  # left for the config to refuse


def test_paths_compare_relative_to_their_anchor_and_follow_a_move(tmp_path):
    from dopr_robot.config_io import differing_settings, moved_path

    def differing(saved, mine):
        return differing_settings(saved, mine, anchor="out", paths=("data",))

    old = {"data": "/a/study/data/x.zarr", "out": "/a/study/runs/r", "lr": 1.0}
    moved = {"data": "/b/moved/data/x.zarr", "out": "/b/moved/runs/r", "lr": 1.0}
    assert differing(old, moved) == []  # run and data moved together
    stayed = {"data": "/a/study/data/x.zarr", "out": "/c/deeper/runs/here/r", "lr": 1.0}
    assert differing(old, stayed) == []  # the run moved, its data stayed put
    assert differing(old, {**moved, "data": "/b/moved/data/y.zarr"}) == ["data"]
    assert differing(old, {**moved, "lr": 2.0}) == ["lr"]
    # without an anchor on both sides, only the same file is the same path
    assert differing({"data": "/a/x.zarr", "out": None}, {"data": "/b/x.zarr"}) == ["data"]
    (tmp_path / "new" / "data").mkdir(parents=True)
    found = moved_path(old["data"], old["out"], tmp_path / "new" / "runs" / "r")
    assert found == str(tmp_path / "new" / "data" / "x.zarr")
    existing = str(tmp_path / "new" / "data")
    assert moved_path(existing, old["out"], "/anywhere") == existing  # still there: unchanged
