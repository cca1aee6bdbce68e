"""MetaWorld (optional extra): checker, seeded layouts, MetaWorld's experts, the install hint."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dopr_robot.envs as envs
from dopr_robot.envs.collect import run_episode
from dopr_robot.errors import UserError

METAWORLD = "dopr_robot/MetaWorld-v0"
installed = importlib.util.find_spec("metaworld") is not None
needs_metaworld = pytest.mark.skipif(not installed, reason="metaworld extra not installed")


@pytest.mark.skipif(installed, reason="metaworld is installed")
def test_without_the_extra_make_says_how_to_install_it():
    with pytest.raises(UserError, match=r'pip install "dopr-robot\[metaworld\]"'):
        envs.make(METAWORLD, task="reach-v3")


@needs_metaworld
def test_checker_passes_with_images():
    env = envs.make(METAWORLD, task="reach-v3", image=True, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*observation space m.* is -?infinity")
        check_env(env.unwrapped, skip_render_check=False)
    observation, _ = env.reset(seed=0)
    assert observation["image"].shape == (96, 96, 3) and observation["image"].std() > 5
    env.close()


@needs_metaworld
def test_seeded_layouts_are_reproducible_and_differ_across_seeds():
    env = envs.make(METAWORLD, task="push-v3")
    first, again, other = (env.reset(seed=s)[0]["state"] for s in (3, 3, 4))
    env.close()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@needs_metaworld
@pytest.mark.parametrize("task", ["reach-v3", "push-v3", "button-press-v3"])
def test_metaworld_expert_succeeds(task):
    env = envs.make(METAWORLD, task=task, task_horizon=300)
    expert = envs.expert_for(METAWORLD, task=task, noise=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MetaWorld warns about its own policy gains
        outcomes = [run_episode(env, expert, seed, seed)[1] for seed in range(10)]
    env.close()
    assert np.mean(outcomes) >= 0.9


@needs_metaworld
def test_budget_truncates_and_unknown_task_is_one_sentence():
    env = envs.make(METAWORLD, task="reach-v3", task_horizon=5)
    env.reset(seed=0)
    for _ in range(5):
        *_, terminated, truncated, info = env.step(np.zeros(4))
    assert (
        truncated
        and not terminated
        and info
        == {
            "success": False,
            "subgoals_done": 0,
            "task_horizon": 5,
            "score": 0.0,
        }
    )
    env.close()
    with pytest.raises(UserError, match="unknown MetaWorld task 'reach-v9'"):
        envs.make(METAWORLD, task="reach-v9")
