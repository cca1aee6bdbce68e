"""Scripted experts solve every horizon, with action noise and at the documented process noise."""

from __future__ import annotations

import numpy as np
import pytest

import dopr_robot.envs as envs
from dopr_robot.envs.balance import balance_gain, linearise_step
from dopr_robot.envs.collect import run_episode
from dopr_robot.errors import UserError

SEEDS = range(20)


def success_rate(env_id, task_horizon, perturbation=0.0, noise=0.0, seeds=SEEDS):
    env = envs.make(env_id, task_horizon=task_horizon, perturbation=perturbation)
    expert = envs.expert_for(env_id, noise=noise)
    try:
        outcomes = [run_episode(env, expert, seed, seed)[1] for seed in seeds]
    finally:
        env.close()
    return float(np.mean(outcomes))


@pytest.mark.parametrize("env_id", ["dopr_robot/ReachChain-v0", "dopr_robot/PushChain-v0"])
@pytest.mark.parametrize("task_horizon", [1, 2, 4, 8])
def test_chain_expert_succeeds_at_every_horizon(env_id, task_horizon):
    assert success_rate(env_id, task_horizon) >= 0.95


@pytest.mark.parametrize("env_id", ["dopr_robot/ReachChain-v0", "dopr_robot/PushChain-v0"])
def test_chain_expert_succeeds_with_noise_and_perturbation(env_id):
    level = envs.PERTURBATION_LEVELS[env_id]
    assert success_rate(env_id, 8, perturbation=level, noise=0.3) >= 0.95


@pytest.mark.parametrize("perturbation", [0.0, envs.PERTURBATION_LEVELS["dopr_robot/Balance-v0"]])
def test_balance_expert_survives_1000_steps(perturbation):
    assert success_rate("dopr_robot/Balance-v0", 1000, perturbation, seeds=SEEDS) == 1.0


def test_balance_expert_survives_action_noise_and_perturbation():
    # an action unit is 500 N on the cart: σ = 0.05 is 25 N of noise per step
    level = envs.PERTURBATION_LEVELS["dopr_robot/Balance-v0"]
    assert success_rate("dopr_robot/Balance-v0", 1000, level, noise=0.05) == 1.0


def test_a_random_policy_fails_the_long_tasks():
    rng = np.random.default_rng(0)
    for env_id, horizon in [("dopr_robot/ReachChain-v0", 4), ("dopr_robot/Balance-v0", 1000)]:
        env = envs.make(env_id, task_horizon=horizon)
        env.reset(seed=0)
        while True:
            action = rng.uniform(-1, 1, env.action_space.shape)
            *_, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        env.close()
        assert not info["success"]


def test_lqr_closed_loop_is_stable_on_the_linearisation():
    from gymnasium.envs.mujoco.inverted_double_pendulum_v5 import InvertedDoublePendulumEnv

    env = InvertedDoublePendulumEnv()
    A, B = linearise_step(env)
    env.close()
    open_loop = np.abs(np.linalg.eigvals(A)).max()
    closed_loop = np.abs(np.linalg.eigvals(A - B @ balance_gain())).max()
    assert open_loop > 1.0  # upright is unstable without control...
    assert closed_loop < 1.0  # ...and stable with the gain


def test_expert_noise_is_seeded_and_bounded():
    expert = envs.expert_for("dopr_robot/PushChain-v0", noise=0.5)
    env = envs.make("dopr_robot/PushChain-v0", task_horizon=2)
    observation, _ = env.reset(seed=0)
    env.close()
    expert.reset(seed=7)
    first = np.stack([expert.act(observation) for _ in range(50)])
    expert.reset(seed=7)
    again = np.stack([expert.act(observation) for _ in range(50)])
    np.testing.assert_array_equal(first, again)
    assert first.min() >= -1 and first.max() <= 1 and first.std(axis=0).min() > 0.1
    with pytest.raises(UserError, match="noise"):
        envs.expert_for("dopr_robot/PushChain-v0", noise=-1)
