"""robomimic's tasks on robosuite: the chain, the experts, and an eval env rebuilt from env_args."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from dopr_robot.cli import main
from dopr_robot.envs import make
from dopr_robot.envs.collect import run_episode
from dopr_robot.envs.registry import resolve_env
from dopr_robot.errors import UserError

pytest.importorskip("robosuite")

LIFT, STACK = "robosuite/Lift", "robosuite/Stack"
LOW_DIM = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]


@pytest.fixture(scope="module")
def lift_episodes():
    """Two Lift expert episodes at H = 2, as collect runs them."""
    env = make(LIFT, task_horizon=2, image=True)
    expert = resolve_env(LIFT).expert()
    episodes = [run_episode(env, expert, seed, seed) for seed in (5, 6)]
    env.close()
    return episodes


def test_lift_chains_two_lifts_with_robomimics_keys_and_an_upright_camera(lift_episodes):
    for episode, success in lift_episodes:
        assert success
        for key, size in zip(LOW_DIM, (3, 4, 2, 10), strict=True):
            assert episode[key].shape[1:] == (size,) and episode[key].dtype == np.float32
        assert episode["state"].shape[1:] == (19,)
        assert episode["object_6d"].shape[1:] == (12,)  # the cube's quaternion as 6 numbers
        assert episode["agentview_image"].shape[1:] == (84, 84, 3)
        assert episode["action"].shape[1:] == (7,)
        # upright: the table (bottom rows) is lit differently from the sky (top rows)
        image = episode["agentview_image"][0].astype(float)
        assert abs(image[:20].mean() - image[-20:].mean()) > 5


def test_the_robosuite_score_is_shaped_progress_per_attempt_and_one_at_success():
    env = make(LIFT, task_horizon=2)
    expert = resolve_env(LIFT).expert()
    observation, info = env.reset(seed=5)
    expert.reset(seed=5)
    scores, done = [info.get("score", 0.0)], False
    while not done:
        observation, _, terminated, truncated, info = env.step(expert.act(observation))
        scores.append(info["score"])
        done = terminated or truncated
    assert info["success"] and scores[-1] == 1.0
    # shaped progress (reach, grasp, lift) rises above 0 before the first lift succeeds
    first_success = next(i for i, s in enumerate(scores) if s >= 0.5)
    assert 0 < max(scores[:first_success]) < 0.5
    assert not env.env.reward_shaping  # read with shaping on for the call only
    env.close()


def test_stack_expert_stacks_and_the_layout_is_a_function_of_the_seed():
    env = make(STACK, task_horizon=1)
    expert = resolve_env(STACK).expert()
    episode, success = run_episode(env, expert, 3, 3)
    assert success
    again, _ = run_episode(env, expert, 3, 3)
    assert np.array_equal(episode["object"][0], again["object"][0])
    other, _ = run_episode(env, expert, 4, 4)
    assert not np.array_equal(episode["object"][0], other["object"][0])
    env.close()


def test_a_15_format_controller_config_or_a_perturbation_is_one_sentence():
    composite = {"type": "BASIC", "body_parts": {"right": {"type": "OSC_POSE"}}}
    with pytest.raises(UserError, match="not a robosuite 1.4 controller config"):
        make(LIFT, task_horizon=1, env_kwargs={"controller_configs": composite})
    with pytest.raises(UserError, match="no perturbation setting"):
        make(LIFT, task_horizon=1, perturbation=0.1)


def _robomimic_file(path, episodes, controller):
    """Expert episodes written the way robomimic writes a dataset, env_args included."""
    env_args = {
        "env_name": "Lift",
        "env_version": "1.4.1",
        "type": 1,
        "env_kwargs": {"robots": ["Panda"], "control_freq": 20, "controller_configs": controller},
    }
    with h5py.File(path, "w") as file:
        data = file.create_group("data")
        data.attrs["env_args"] = json.dumps(env_args)
        for i, (episode, _) in enumerate(episodes * 2):  # 4 demos: a train/val split needs 2+
            demo = data.create_group(f"demo_{i}")
            demo["actions"] = episode["action"].astype(np.float64)
            for key in LOW_DIM:
                demo[f"obs/{key}"] = episode[key].astype(np.float64)
    return path


def test_a_converted_robomimic_store_evaluates_in_the_env_its_env_args_describe(
    tmp_path, lift_episodes, capsys
):
    import robosuite

    controller = robosuite.load_controller_config(default_controller="OSC_POSE")
    source = _robomimic_file(tmp_path / "lift.hdf5", lift_episodes, controller)
    store, run, out = tmp_path / "lift.zarr", tmp_path / "run", tmp_path / "eval"
    assert main(["data", "convert", str(source), str(store)]) == 0
    keys = ",".join(LOW_DIM)
    train = ["train", "--data", str(store), "--out", str(run), "--steps", "10", "--quiet"]
    assert main([*train, "--policy", "regression", "--backbone", "mlp", "--obs-keys", keys]) == 0
    argv = ["eval", "--ckpt", str(run), "--task-horizons", "1,2", "--episodes", "1"]
    assert main([*argv, "--video", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["env"]["id"] == LIFT
    assert (out / "videos" / "H0002.mp4").stat().st_size > 0
    # the same store with a robosuite 1.5 (composite) controller config: one sentence
    composite = {"type": "BASIC", "body_parts": {"right": {"type": "OSC_POSE"}}}
    source = _robomimic_file(tmp_path / "lift15.hdf5", lift_episodes, composite)
    assert main(["data", "convert", str(source), str(tmp_path / "lift15.zarr")]) == 0
    train = ["train", "--data", str(tmp_path / "lift15.zarr"), "--out", str(tmp_path / "r15")]
    flags = ["--steps", "2", "--policy", "regression", "--backbone", "mlp", "--obs-keys", keys]
    assert main([*train, *flags, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", "--ckpt", str(tmp_path / "r15"), "--out", str(tmp_path / "e15")]) == 2
    assert "not a robosuite 1.4 controller config" in capsys.readouterr().err
    assert not (tmp_path / "e15").exists()
