"""plan.py: the study's grid (cells, tuning and verdict runs, their seeds), where each run lives
on disk, and the settings each run trains with; no training, only the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from dopr_robot.envs.registry import PERTURBATION_LEVELS
from dopr_robot.study.config import study_from_dict
from dopr_robot.study.plan import (
    DATA_SEED_STRIDE,
    Cell,
    Run,
    base_grids,
    cells,
    collect_config,
    collections,
    compared_optimizers,
    data_path,
    extended_lr,
    run_configs,
    task_of,
    tuning_runs,
    verdict_runs,
)

from .conftest import minimal_study

BALANCE = minimal_study()["tasks"][0]


def two_task_study(**changes):
    """Two tasks (the second with its own policy kinds), two policy kinds, two factors."""
    values = dict(
        policies=["flow", "regression"],
        conditioning=[1.0, 30.0],
        tasks=[BALANCE, {**BALANCE, "name": "steady", "policies": ["diffusion"]}],
    )
    return study_from_dict(minimal_study(**{**values, **changes}))


def test_cells_are_every_task_by_its_policies_by_every_conditioning_factor():
    found = [(c.task, c.policy, c.conditioning) for c in cells(two_task_study())]
    assert found == [
        ("balance", "flow", 1.0),
        ("balance", "flow", 30.0),
        ("balance", "regression", 1.0),
        ("balance", "regression", 30.0),
        ("steady", "diffusion", 1.0),
        ("steady", "diffusion", 30.0),
    ]


def test_a_cell_key_and_label_name_its_task_policy_and_factor():
    plain, scaled = Cell("balance", "flow", 1.0), Cell("balance", "flow", 30.0)
    assert (plain.key, scaled.key) == ("balance/flow-c1", "balance/flow-c30")
    assert plain.label == "balance · flow · standardised inputs"
    assert scaled.label == "balance · flow · ill-conditioned inputs (x30)"


def test_compared_optimizers_are_those_in_a_pair_in_first_appearance_order():
    optimizers = {
        "sgd": {"lr": [1e-2]},  # in no pair: never trained
        "muon": {"lr": [1e-3]},
        "adamw": {"lr": [1e-3]},
        "dopr-adamw": {"lr": [1e-3]},
    }
    pairs = [["adamw", "dopr-adamw"], ["muon", "dopr-adamw"]]
    config = study_from_dict(minimal_study(optimizers=optimizers, pairs=pairs))
    assert compared_optimizers(config) == ["adamw", "dopr-adamw", "muon"]
    assert {run.optimizer for run in tuning_runs(config)} == {"adamw", "dopr-adamw", "muon"}


def test_tuning_runs_are_each_cell_by_optimizer_by_lr_by_tuning_seed():
    config = study_from_dict(minimal_study(tuning_seeds=2, conditioning=[1.0, 10.0]))
    found = [(r.cell.key, r.optimizer, r.lr, r.seed) for r in tuning_runs(config)]
    expected = [
        (cell, optimizer, lr, seed)
        for cell in ("balance/flow-c1", "balance/flow-c10")
        for optimizer, lr in (("adamw", 1e-3), ("dopr-adamw", 1e-3), ("dopr-adamw", 3e-3))
        for seed in (0, 1)
    ]
    assert found == expected


def test_tuning_runs_follow_an_extended_grid():
    config = study_from_dict(minimal_study(tuning_seeds=1))
    grids = base_grids(config)
    cell = "balance/flow-c1"
    assert grids == {(cell, "adamw"): [1e-3], (cell, "dopr-adamw"): [1e-3, 3e-3]}
    grids[(cell, "adamw")] = [1e-3, 3e-3]
    adamw = [r.lr for r in tuning_runs(config, grids) if r.optimizer == "adamw"]
    assert adamw == [1e-3, 3e-3]


@pytest.mark.parametrize(
    "grid, side, expected",
    [
        ([1e-3, 3e-3], "largest", 9e-3),
        ([3e-3, 1e-3], "largest", 9e-3),  # order of the grid does not matter
        ([1e-3, 3e-3], "smallest", 3.33e-4),  # the grid's own step, 3 significant digits
        ([1e-4, 1e-3, 1e-2], "largest", 0.1),
        ([1e-3], "largest", 3e-3),  # one point: x3
        ([1e-3], "smallest", 3.33e-4),
    ],
)
def test_an_extension_is_one_more_step_of_the_grid_beyond_its_end(grid, side, expected):
    assert extended_lr(grid, side) == pytest.approx(expected, rel=1e-12)


def test_verdict_runs_are_fresh_seeds_at_each_chosen_lr():
    config = study_from_dict(minimal_study(tuning_seeds=2, verdict_seeds=3))
    chosen = {("balance/flow-c1", "adamw"): 1e-3, ("balance/flow-c1", "dopr-adamw"): 3e-3}
    runs = verdict_runs(config, chosen)
    assert [(r.optimizer, r.lr, r.seed) for r in runs] == [
        ("adamw", 1e-3, 2),
        ("adamw", 1e-3, 3),
        ("adamw", 1e-3, 4),
        ("dopr-adamw", 3e-3, 2),
        ("dopr-adamw", 3e-3, 3),
        ("dopr-adamw", 3e-3, 4),
    ]
    assert not {r.seed for r in runs} & {r.seed for r in tuning_runs(config)}


def test_no_verdict_runs_where_no_lr_was_chosen():
    config = study_from_dict(minimal_study())
    chosen = {("balance/flow-c1", "adamw"): None, ("balance/flow-c1", "dopr-adamw"): 3e-3}
    assert {r.optimizer for r in verdict_runs(config, chosen)} == {"dopr-adamw"}
    assert verdict_runs(config, {}) == []


def test_a_run_lives_under_runs_task_cell_optimizer_lr_seed(tmp_path):
    run = Run(Cell("balance", "flow", 30.0), "dopr-adamw", 0.003, 4)
    directory = tmp_path / "runs" / "balance" / "flow-c30" / "dopr-adamw-lr0.003-s4"
    assert run.directory(tmp_path) == directory
    assert run.validation_dir(tmp_path) == directory / "eval" / "validation"
    assert run.test_dir(tmp_path) == directory / "eval" / "test"
    assert run.budget_dir(tmp_path, 500) == directory / "eval" / "budget" / "step_0000500"


def test_data_and_collection_settings_of_a_task(tmp_path):
    task = BALANCE | {"noise": 0.1, "env_kwargs": {"max_tilt": 0.5}}
    calm = BALANCE | {"name": "calm", "perturbation": 0.0}
    config = study_from_dict(minimal_study(tasks=[task, calm]))
    balance, calm = task_of(config, "balance"), task_of(config, "calm")
    assert data_path(tmp_path, balance) == tmp_path / "data" / "balance.zarr"
    settings = collect_config(balance)
    assert (settings.env_id, settings.task_horizon, settings.episodes) == (
        "dopr_robot/Balance-v0",
        50,
        5,
    )
    assert settings.noise == 0.1 and settings.env_kwargs == {"max_tilt": 0.5}
    # no perturbation given: the family's documented level; a given 0 stays 0
    assert settings.perturbation == PERTURBATION_LEVELS["dopr_robot/Balance-v0"] > 0
    assert collect_config(calm).perturbation == 0.0


def test_run_settings_layer_study_then_task_then_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = study_from_dict(
        minimal_study(
            optimizers={
                "adamw": {"lr": [1e-3]},
                "dopr-g": {"name": "dopr-adamw", "lr": [3e-3], "kwargs": {"gamma": 0.3}},
            },
            pairs=[["adamw", "dopr-g"]],
            conditioning=[10.0],
            budget=[0.25, 1.0],
            train={"steps": 100, "batch_size": 32, "checkpoint_every": 40, "lr": 0.5},
            policy={"mlp_width": 64, "mlp_depth": 2},
            tasks=[BALANCE | {"train": {"batch_size": 8}, "policy": {"mlp_width": 16}}],
        )
    )
    run = next(r for r in tuning_runs(config) if r.optimizer == "dopr-g" and r.seed == 1)
    root = Path("studies") / "s"  # relative: the run's settings name absolute paths
    train, policy = run_configs(config, root, run)
    assert (train.optimizer, train.optimizer_kwargs) == ("dopr-adamw", {"gamma": 0.3})
    assert (train.lr, train.seed) == (3e-3, 1)  # the run's own, over the study's lr
    assert (train.steps, train.batch_size) == (100, 8)  # the task's batch size over the study's
    assert train.checkpoint_every == 5  # lowered so that budget steps 25 and 100 are checkpoints
    where = (tmp_path / "studies" / "s").resolve()
    assert train.data == str(where / "data" / "balance.zarr")
    assert train.out == str(where / "runs" / "balance" / "flow-c10" / "dopr-g-lr0.003-s1")
    assert (policy.kind, policy.ill_conditioning) == ("flow", 10.0)
    assert (policy.mlp_width, policy.mlp_depth) == (16, 2)


def test_with_data_seeds_each_verdict_seed_trains_on_its_own_demonstrations(tmp_path):
    config = study_from_dict(minimal_study(tuning_seeds=2, verdict_seeds=3, data_seeds=True))
    (task,) = config.tasks
    assert collections(config) == [(task, None), (task, 2), (task, 3), (task, 4)]
    chosen = {(c.key, label): 1e-3 for c in cells(config) for label in ("adamw", "dopr-adamw")}
    for run in verdict_runs(config, chosen):  # each verdict seed its own set, both optimizers
        train, _ = run_configs(config, tmp_path, run)
        assert train.data == str((tmp_path / "data" / f"balance-d{run.seed}.zarr").resolve())
    for run in tuning_runs(config):  # the lr is chosen on the shared set
        train, _ = run_configs(config, tmp_path, run)
        assert train.data == str((tmp_path / "data" / "balance.zarr").resolve())
    starts = [collect_config(task, seed).seed for _, seed in collections(config)]
    assert starts == [0, 2 * DATA_SEED_STRIDE, 3 * DATA_SEED_STRIDE, 4 * DATA_SEED_STRIDE]
    shared = study_from_dict(minimal_study(verdict_seeds=3))
    assert collections(shared) == [(task, None)] and not shared.data_seeds  # the default
