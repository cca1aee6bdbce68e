"""Recipes: every shipped one loads and checks; `collect --recipe` and `train --recipe` use them."""

from __future__ import annotations

import json

import pytest

from dopr_robot.cli import main
from dopr_robot.errors import UserError
from dopr_robot.recipes import load_recipe, recipe_names
from dopr_robot.train.checkpoint import read_config


def test_every_shipped_recipe_loads_and_its_tables_are_valid_configs():
    names = recipe_names()
    assert {"pusht-flow", "pusht-diffusion"} <= set(names)
    for name in names:
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.collect["env_id"]


def test_an_unknown_recipe_is_one_sentence_and_exit_2_with_nothing_written(tmp_path, capsys):
    with pytest.raises(UserError, match="unknown recipe 'nope'; known recipes: .*pusht-flow"):
        load_recipe("nope")
    out = tmp_path / "run"
    assert main(["train", "--recipe", "nope", "--data", str(tmp_path), "--out", str(out)]) == 2
    assert main(["collect", "--recipe", "nope", "--out", str(tmp_path / "d.zarr")]) == 2
    assert "unknown recipe 'nope'" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "d.zarr").exists()


def test_collect_and_train_take_the_recipes_settings_and_flags_override_them(tmp_path):
    data, run = tmp_path / "pusht.zarr", tmp_path / "run"
    collect = ["collect", "--recipe", "pusht-flow", "--out", str(data), "--quiet"]
    assert main([*collect, "--episodes", "2"]) == 0  # the flag overrides the recipe's 500
    from dopr_robot.datasets import ReplayBuffer

    store = ReplayBuffer.open(data)
    recorded = dict(store.attrs)["collect"]
    recipe = load_recipe("pusht-flow")
    assert store.n_episodes == 2 and recorded["noise"] == recipe.collect["noise"]
    assert recorded["env_id"] == "gym_pusht/PushT-v0"
    train = ["train", "--recipe", "pusht-flow", "--data", str(data), "--out", str(run)]
    assert main([*train, "--steps", "3", "--val-every", "3", "--quiet", "--threads", "1"]) == 0
    saved = read_config(run)
    assert saved["train"]["steps"] == 3 and saved["train"]["lr"] == recipe.train["lr"]
    assert saved["policy"]["obs_keys"] == ["agent_pos", "block_keypoints"]
    assert saved["policy"]["kind"] == "flow"
    assert json.loads((run / "config.json").read_text())["policy"] == saved["policy"]
