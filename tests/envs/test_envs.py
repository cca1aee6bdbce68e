"""The task families: gymnasium's checker, the H knob, determinism, rendering, bad settings."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dopr_robot.envs as envs
from dopr_robot.errors import UserError

BUILT_IN = ("dopr_robot/ReachChain-v0", "dopr_robot/PushChain-v0", "dopr_robot/Balance-v0")
CHAINS = ("dopr_robot/ReachChain-v0", "dopr_robot/PushChain-v0")


@pytest.fixture
def make():
    made = []

    def factory(env_id, **kwargs):
        env = envs.make(env_id, **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


@pytest.mark.parametrize("env_id", BUILT_IN)
@pytest.mark.parametrize("image", [False, True])
def test_gymnasium_env_checker_passes(make, env_id, image):
    env = make(env_id, task_horizon=3, image=image, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anything the checker says fails the test, except:
        warnings.filterwarnings("ignore", message=".*observation space m.* is -?infinity")
        check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", BUILT_IN)
def test_observation_dict_bounds_and_info(make, env_id):
    env = make(env_id, task_horizon=2, image=True)
    observation, info = env.reset(seed=0)
    assert set(observation) == {"state", "image"}
    assert observation["state"].dtype == np.float32
    assert observation["image"].shape == (96, 96, 3) and observation["image"].dtype == np.uint8
    assert env.action_space.low.min() == -1 and env.action_space.high.max() == 1
    assert info == {"success": False, "subgoals_done": 0, "task_horizon": 2, "score": 0.0}
    env.step(np.full(env.action_space.shape, 5.0))  # out of bounds is clipped, not an error


@pytest.mark.parametrize("env_id", BUILT_IN)
def test_seeded_resets_are_deterministic_including_process_noise(make, env_id):
    level = envs.PERTURBATION_LEVELS[env_id]

    def trajectory(seed):
        env = make(env_id, task_horizon=50, perturbation=level)
        observation, _ = env.reset(seed=seed)
        actions = np.random.default_rng(1).uniform(-0.3, 0.3, size=(30, *env.action_space.shape))
        states = [observation["state"]]
        for action in actions:
            observation, *_, terminated, truncated, _ = env.step(action)
            states.append(observation["state"])
            if terminated or truncated:
                break
        return np.stack(states)

    first, again, other = trajectory(3), trajectory(3), trajectory(4)
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)


@pytest.mark.parametrize("env_id", BUILT_IN)
def test_perturbation_changes_the_dynamics(make, env_id):
    def states(perturbation):
        env = make(env_id, task_horizon=50, perturbation=perturbation)
        env.reset(seed=0)
        zero = np.zeros(env.action_space.shape)
        return np.stack([env.step(zero)[0]["state"] for _ in range(5)])

    assert not np.allclose(states(0.0), states(envs.PERTURBATION_LEVELS[env_id]))


@pytest.mark.parametrize("env_id", BUILT_IN)
def test_frames_are_not_blank_and_change(make, env_id):
    env = make(env_id, task_horizon=50, image=True, render_mode="rgb_array")
    expert = envs.expert_for(env_id)
    observation, _ = env.reset(seed=0)
    first_image, first_frame = observation["image"], env.render()
    for _ in range(15):
        observation, *_ = env.step(expert.act(observation))
    assert first_frame.shape == (256, 256, 3) and first_frame.dtype == np.uint8
    for image in (first_image, first_frame):
        assert image.std() > 5  # not one flat colour
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10
    assert np.abs(observation["image"].astype(int) - first_image).sum() > 0
    assert np.abs(env.render().astype(int) - first_frame).sum() > 0


@pytest.mark.parametrize("env_id", CHAINS)
def test_chain_counts_subgoals_and_budget_grows_with_h(make, env_id):
    env = make(env_id, task_horizon=3)
    expert = envs.expert_for(env_id)
    observation, info = env.reset(seed=0)
    done_so_far, rewards = [info["subgoals_done"]], 0.0
    while True:
        observation, reward, terminated, truncated, info = env.step(expert.act(observation))
        rewards += reward
        done_so_far.append(info["subgoals_done"])
        if terminated or truncated:
            break
    assert terminated and info["success"] and info["subgoals_done"] == 3 and rewards == 3
    assert np.all(np.diff(done_so_far) >= 0) and set(done_so_far) == {0, 1, 2, 3}
    budgets = []
    for horizon in (1, 4):
        env.reset(seed=0, options={"task_horizon": horizon})
        budgets.append(env.unwrapped.max_episode_steps)
    assert budgets[1] == 4 * budgets[0]


@pytest.mark.parametrize("env_id", CHAINS)
def test_chain_doing_nothing_runs_out_of_budget(make, env_id):
    env = make(env_id, task_horizon=2)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(zero)
        steps += 1
        if terminated or truncated:
            break
    assert truncated and not terminated and not info["success"]
    assert steps == env.unwrapped.max_episode_steps
    with pytest.raises(RuntimeError, match="reset"):
        env.step(zero)


def test_balance_success_means_surviving_h_steps(make):
    env = make("dopr_robot/Balance-v0", task_horizon=25)
    expert = envs.expert_for("dopr_robot/Balance-v0")
    observation, _ = env.reset(seed=0)
    for step in range(25):
        observation, _, terminated, truncated, info = env.step(expert.act(observation))
        assert info["subgoals_done"] == step + 1 and not terminated
    assert truncated and info["success"]
    env.reset(seed=0)
    push = np.ones(1)
    for _ in range(25):  # full force one way topples the pendulum
        _, _, terminated, truncated, info = env.step(push)
        if terminated:
            break
    assert terminated and not truncated and not info["success"] and info["subgoals_done"] < 25


def test_balance_is_gymnasiums_own_env(make):
    from gymnasium.envs.mujoco.inverted_double_pendulum_v5 import InvertedDoublePendulumEnv

    assert isinstance(make("dopr_robot/Balance-v0").unwrapped.pendulum, InvertedDoublePendulumEnv)


@pytest.mark.parametrize("env_id", BUILT_IN)
def test_reset_options_override_horizon_and_perturbation(make, env_id):
    env = make(env_id, task_horizon=2)
    _, info = env.reset(seed=0, options={"task_horizon": 7, "perturbation": 0.1})
    assert info["task_horizon"] == 7
    assert env.unwrapped.perturbation == 0.1
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=0, options={"horizon": 3})


@pytest.mark.parametrize("env_id", BUILT_IN)
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task_horizon": 0}, "task_horizon must be a positive integer"),
        ({"task_horizon": 2.5}, "task_horizon must be a positive integer"),
        ({"perturbation": -1.0}, "perturbation must be"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_settings_are_one_sentence(env_id, kwargs, message):
    with pytest.raises(UserError, match=message):
        envs.make(env_id, **kwargs)


def test_unknown_id_names_the_known_ones():
    with pytest.raises(UserError, match="unknown env 'dopr_robot/Nope-v0': not one of dopr"):
        envs.make("dopr_robot/Nope-v0")


def test_ids_are_registered_with_gymnasium():
    for env_id in envs.ENV_IDS:
        assert env_id in gymnasium.registry
    env = gymnasium.make("dopr_robot/ReachChain-v0", task_horizon=5)
    assert env.reset(seed=0)[1]["task_horizon"] == 5
    env.close()
