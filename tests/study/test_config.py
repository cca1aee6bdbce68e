"""Study configs: the presets load and expand as documented; bad configs fail in one sentence."""

from __future__ import annotations

import pytest

from dopr_robot.errors import UserError
from dopr_robot.study.config import load_study, preset_path, study_from_dict
from dopr_robot.study.plan import cells, compared_optimizers, run_configs, runs


def _minimal(**changes) -> dict:
    values = {
        "name": "t",
        "seeds": 2,
        "pairs": [["adamw", "dopr-adamw"]],
        "optimizers": {"adamw": {"lr": [1e-3]}, "dopr-adamw": {"lr": [1e-3, 3e-3]}},
        "tasks": [
            {
                "name": "balance",
                "env_id": "dopr_robot/Balance-v0",
                "demos": 5,
                "collect_horizon": 50,
                "horizons": [10, 20],
            }
        ],
    }
    values.update(changes)
    return values


@pytest.mark.parametrize("preset", ["quick", "default", "full"])
def test_presets_load_and_check(preset):
    config = load_study(preset_path(preset))
    assert config.name == preset
    assert runs(config), "a preset must train something"
    for base, candidate in config.pairs:
        assert config.optimizers[candidate].name.startswith("dopr-")
        assert not config.optimizers[base].name.startswith("dopr-")


def test_default_preset_shape():
    """What the README promises for the default study."""
    config = load_study(preset_path("default"))
    assert {t.name for t in config.tasks} == {"balance", "reach"}
    assert config.seeds >= 5  # the paired comparison needs 5 pairs before it gives a verdict
    assert config.conditioning[0] == 1.0 and len(config.conditioning) == 2
    assert compared_optimizers(config) == ["adamw", "dopr-adamw"]
    assert all(len(config.optimizers[o].lr) >= 2 for o in compared_optimizers(config))


def test_grid_expansion_and_run_settings(tmp_path):
    config = study_from_dict(_minimal(conditioning=[1.0, 10.0]))
    assert len(cells(config)) == 2
    assert len(runs(config)) == 2 * (1 + 2) * 2  # cells x (lrs of both optimizers) x seeds
    run = runs(config)[-1]
    train, policy = run_configs(config, tmp_path, run)
    assert (train.optimizer, train.lr, train.seed) == ("dopr-adamw", 3e-3, 1)
    assert policy.ill_conditioning == 10.0
    assert train.out.endswith("runs/balance/flow-c10/dopr-adamw-lr0.003-s1")
    assert train.data.endswith("data/balance.zarr")


def test_labelled_optimizer_settings_pass_kwargs(tmp_path):
    optimizers = {
        "adamw": {"lr": [1e-3]},
        "dopr-g": {"name": "dopr-adamw", "lr": [1e-3], "kwargs": {"gamma": 0.3}},
    }
    config = study_from_dict(_minimal(optimizers=optimizers, pairs=[["adamw", "dopr-g"]]))
    train, _ = run_configs(config, tmp_path, runs(config)[-1])
    assert train.optimizer == "dopr-adamw" and train.optimizer_kwargs == {"gamma": 0.3}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"colour": 1}, "unknown key"),
        ({"pairs": [["adamw", "nope"]]}, "must name two"),
        ({"optimizers": {"adamw": {"lr": [1e-3]}, "dopr-adamw": {"lr": []}}}, "at least 1 item"),
        (
            {
                "optimizers": {
                    "adamw": {"lr": [1e-3], "kwargs": {"gamma": 1}},
                    "dopr-adamw": {"lr": [1]},
                }
            },
            "only apply to dopr",
        ),
        ({"policies": ["telepathy"]}, "unknown policy kind"),
        ({"train": {"stepz": 3}}, "unknown key 'stepz'"),
        ({"conditioning": [0.0]}, "conditioning"),
    ],
)
def test_bad_configs_are_one_sentence(changes, message):
    with pytest.raises(UserError, match=message):
        study_from_dict(_minimal(**changes))


def test_bad_task_and_files(tmp_path):
    task = dict(_minimal()["tasks"][0], env_id="dopr_robot/Nope-v0")
    with pytest.raises(UserError, match="Nope"):
        study_from_dict(_minimal(tasks=[task]))
    task = dict(_minimal()["tasks"][0], horizons=[20, 10])
    with pytest.raises(UserError, match="increasing"):
        study_from_dict(_minimal(tasks=[task]))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ")
    with pytest.raises(UserError, match="not valid TOML"):
        load_study(broken)
    with pytest.raises(UserError, match="does not exist"):
        load_study(tmp_path / "missing.toml")
    with pytest.raises(UserError, match="unknown preset"):
        preset_path("huge")
