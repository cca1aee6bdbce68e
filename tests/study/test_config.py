"""Study configs: the presets load and expand as documented; bad configs fail in one sentence."""

from __future__ import annotations

import pytest

from dopr_robot.errors import UserError
from dopr_robot.study.config import PRESETS, load_study, preset_path, study_from_dict
from dopr_robot.study.plan import cells, compared_optimizers, run_configs, tuning_runs

from .conftest import minimal_study


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_load_and_check(preset):
    config = load_study(preset_path(preset))
    assert config.name == preset
    assert tuning_runs(config), "a preset must train something"
    for base, candidate in config.pairs:
        assert config.optimizers[candidate].name.startswith("dopr-")
        assert not config.optimizers[base].name.startswith("dopr-")


def test_the_command_line_offers_every_preset():
    from dopr_robot.cli import build_parser
    from dopr_robot.study.config import PRESETS

    study = build_parser()._subparsers._group_actions[0].choices["study"]
    preset = next(a for a in study._actions if a.dest == "preset")
    assert tuple(preset.choices) == PRESETS


def test_default_preset_shape():
    """What the README and issues 13 and 26 promise for the default study: the mission's policies
    with a baseline, at least 10 verdict seeds, separate tuning seeds, and a budget axis with
    enough checkpoints to time a target and to check the plateau."""
    config = load_study(preset_path("default"))
    assert config.margin == 0.1 and len(config.budget_steps(config.tasks[0])) >= 4
    for task in config.tasks:
        assert {"diffusion", "flow"} <= set(config.task_policies(task))
    assert any("regression" in config.task_policies(task) for task in config.tasks)
    assert config.verdict_seeds >= 10 and config.tuning_seeds >= 2 and config.data_seeds
    assert not set(config.tuning_seed_list) & set(config.verdict_seed_list)
    assert len(config.budget) >= 3 and config.budget[-1] == 1.0
    assert compared_optimizers(config) == ["adamw", "dopr-adamw"]
    assert all(len(config.optimizers[o].lr) >= 2 for o in compared_optimizers(config))


def test_variants_extend_the_default_and_change_only_what_they_say():
    default = load_study(preset_path("default"))
    long = load_study(preset_path("long"))
    assert long.train["steps"] == 2 * default.train["steps"]
    assert long.tasks == default.tasks and long.optimizers == default.optimizers
    assert long.budget_steps(long.tasks[0]) == [200, 400, 800, 1600, 3200]
    conditioning = load_study(preset_path("conditioning"))
    assert conditioning.conditioning == [1.0, 30.0]
    assert conditioning.verdict_seeds == default.verdict_seeds
    # their pages were run with 1 tuning seed and one shared demonstration set: they keep that
    for variant in (long, conditioning):
        assert variant.tuning_seeds == 1 and not variant.data_seeds
    horizon = load_study(preset_path("horizon"))
    (push,) = horizon.tasks
    assert push.env_id == "dopr_robot/PushChain-v0" and horizon.task_policies(push) == ["flow"]
    assert push.horizons == [1, 2, 4, 8] and horizon.train["steps"] == 6400


@pytest.mark.parametrize(
    "preset, recipe", [("benchmarks", "pusht-flow"), ("benchmarks-cpu", "can-flow")]
)
def test_the_benchmark_presets_train_their_competent_recipe(preset, recipe):
    """Issue 25: the benchmarks answer with the policies a recipe measured as competent, judged
    on the score, with at least 10 verdict seeds; the policy is the recipe's, the data too."""
    from dopr_robot.recipes import load_recipe

    config, shipped = load_study(preset_path(preset)), load_recipe(recipe)
    (task,) = config.tasks
    assert config.metric == "score" and config.verdict_seeds >= 10
    assert task.env_id == shipped.collect["env_id"] and task.noise == shipped.collect["noise"]
    assert task.demos == shipped.collect["episodes"]
    policy = config.policy_values(task)
    assert {key: policy.get(key) for key in shipped.policy if key != "kind"} == {
        key: value for key, value in shipped.policy.items() if key != "kind"
    }
    assert config.task_policies(task) == [shipped.policy["kind"]]
    from dopr_robot.train import TrainConfig

    train, measured = (
        TrainConfig.from_dict(config.train_values(task)),
        TrainConfig.from_dict(shipped.train),
    )
    for key in ("batch_size", "ema_decay", "weight_decay", "warmup_steps"):
        assert getattr(train, key) == getattr(measured, key), key


def test_extends_merges_tables_and_refuses_what_it_cannot_use(tmp_path):
    variant = tmp_path / "v.toml"
    variant.write_text('extends = "quick"\nname = "v"\n[train]\nsteps = 600\n')
    config = load_study(variant)
    quick = load_study(preset_path("quick"))
    assert config.name == "v" and config.train == {**quick.train, "steps": 600}
    variant.write_text('extends = "nope"\n')
    with pytest.raises(UserError, match="unknown preset 'nope'"):
        load_study(variant)


def test_grid_expansion_and_run_settings(tmp_path):
    config = study_from_dict(minimal_study(conditioning=[1.0, 10.0]))
    assert len(cells(config)) == 2
    # cells x (lrs of both optimizers) x tuning seeds
    assert len(tuning_runs(config)) == 2 * (1 + 2) * 2
    run = tuning_runs(config)[-1]
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
    config = study_from_dict(minimal_study(optimizers=optimizers, pairs=[["adamw", "dopr-g"]]))
    train, _ = run_configs(config, tmp_path, tuning_runs(config)[-1])
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
        ({"seeds": 5}, "'seeds' was split into tuning_seeds"),
        ({"budget": [0.0, 1.0]}, "budget fractions"),
        ({"verdict_seeds": 1}, "verdict_seeds = 1 is not valid"),
    ],
)
def test_bad_configs_are_one_sentence(changes, message):
    with pytest.raises(UserError, match=message):
        study_from_dict(minimal_study(**changes))


def test_bad_task_and_files(tmp_path):
    task = dict(minimal_study()["tasks"][0], env_id="dopr_robot/Nope-v0")
    with pytest.raises(UserError, match="Nope"):
        study_from_dict(minimal_study(tasks=[task]))
    task = dict(minimal_study()["tasks"][0], horizons=[20, 10])
    with pytest.raises(UserError, match="increasing"):
        study_from_dict(minimal_study(tasks=[task]))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ")
    with pytest.raises(UserError, match="not valid TOML"):
        load_study(broken)
    with pytest.raises(UserError, match="does not exist"):
        load_study(tmp_path / "missing.toml")
    with pytest.raises(UserError, match="unknown preset"):
        preset_path("huge")
