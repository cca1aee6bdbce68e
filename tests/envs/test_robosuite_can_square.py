"""robomimic's PickPlaceCan and NutAssemblySquare on robosuite: shapes, experts, re-placement, and
the names a robomimic dataset's env_args give them."""

from __future__ import annotations

import numpy as np
import pytest

from dopr_robot.envs import make
from dopr_robot.envs.collect import run_episode
from dopr_robot.envs.registry import resolve_env
from dopr_robot.envs.robosuite_tasks import env_from_robomimic

pytest.importorskip("robosuite")

CAN, SQUARE = "robosuite/PickPlaceCan", "robosuite/NutAssemblySquare"
LOW_DIM = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 14}
#: where each task's object starts (robosuite 1.4.1's samplers), as (x low, x high, y low, y high)
#: of its centre: the can in bin1, the nut in the strip left of the pegs
START = {CAN: (-0.02, 0.22, -0.42, -0.08), SQUARE: (-0.115, -0.11, 0.11, 0.225)}
#: where a placed object ends: the can in its bin quarter, the nut round the square peg
GOAL = {CAN: (0.1, 0.295, 0.28, 0.525), SQUARE: (0.2, 0.26, 0.07, 0.13)}


def inside(xy, box) -> bool:
    return box[0] <= xy[0] <= box[1] and box[2] <= xy[1] <= box[3]


@pytest.fixture(scope="module", params=[CAN, SQUARE])
def task(request):
    """(env id, an H = 1 env, its expert), made once per task."""
    env = make(request.param, task_horizon=1)
    yield request.param, env, resolve_env(request.param).expert()
    env.close()


def test_the_env_has_robomimics_keys_with_a_14_number_object_state(task):
    env_id, env, _ = task
    observation, info = env.reset(seed=0)
    for key, size in LOW_DIM.items():
        assert observation[key].shape == (size,) and observation[key].dtype == np.float32
    assert observation["state"].shape == (23,)
    assert np.array_equal(observation["state"][9:], observation["object"])
    assert inside(observation["object"][:2], START[env_id])
    observation, reward, terminated, truncated, info = env.step(np.zeros(7, np.float32))
    assert (reward, terminated, truncated, info["success"]) == (0.0, False, False, False)


def test_object_6d_is_the_object_state_with_rotation_columns_for_each_quaternion(task):
    """The continuous orientation: the same rotation matrix columns as the quaternions, and the
    same numbers for q and -q (one orientation), which the quaternion itself does not give."""
    from scipy.spatial.transform import Rotation

    from dopr_robot.envs.robosuite_tasks import rotations_6d

    _, env, _ = task
    observation, _ = env.reset(seed=3)
    obj, six = observation["object"], observation["object_6d"]
    assert six.shape == (18,) and six.dtype == np.float32
    assert np.array_equal(six[:3], obj[:3]) and np.array_equal(six[9:12], obj[7:10])
    for quat, columns in ((obj[3:7], six[3:9]), (obj[10:14], six[12:18])):
        matrix = Rotation.from_quat(quat).as_matrix()
        assert np.allclose(columns, matrix[:, :2].T.reshape(6), atol=1e-5)
    flipped = obj.copy()
    flipped[3:7] *= -1
    flipped[10:14] *= -1
    assert np.allclose(rotations_6d(flipped, (3, 10)), six, atol=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_expert_puts_the_object_in_place_at_h1(task, seed):
    env_id, env, expert = task
    episode, success = run_episode(env, expert, seed, seed)
    assert success
    assert len(episode["action"]) < env.steps_per_goal
    # the last observation before success: the object over its goal, not where it started
    assert inside(episode["object"][-1][:2], GOAL[env_id])


def test_the_replacement_is_seeded_at_rest_and_in_the_start_region(task):
    env_id, env, _ = task
    poses = []
    for seed in (3, 3, 4):
        env.reset(seed=seed)
        env._replace_objects()
        for _ in range(5):  # it was set at rest on its surface: it stays there
            observation, *_ = env.step(np.zeros(7, np.float32))
        poses.append(observation["object"][:3])
    assert np.allclose(poses[0], poses[1]) and not np.allclose(poses[0], poses[2])
    for pose in poses:
        assert inside(pose[:2], START[env_id])


@pytest.mark.parametrize("env_id", [CAN, SQUARE])
def test_the_expert_chains_two_at_h2_the_object_put_back_between(env_id):
    env = make(env_id, task_horizon=2)
    expert = resolve_env(env_id).expert()
    observation, info = env.reset(seed=5)
    expert.reset(seed=5)
    after_first, scores, done = None, [], False
    while not done:
        observation, reward, terminated, truncated, info = env.step(expert.act(observation))
        if reward and after_first is None:
            after_first = observation["object"][:2]
        if after_first is None:
            scores.append(info["score"])
        done = terminated or truncated
    env.close()
    assert info["success"] and info["subgoals_done"] == 2 and info["score"] == 1.0
    assert inside(after_first, START[env_id])
    # robosuite's staged reward (reach, grasp, lift, hover) scores the first attempt under way
    assert 0.1 < max(scores) < 0.5


def test_robomimics_env_names_map_to_the_tasks():
    for name, env_id in (("PickPlaceCan", CAN), ("NutAssemblySquare", SQUARE)):
        kwargs = {"robots": ["Panda"], "control_freq": 20}
        resolved = env_from_robomimic({"env_name": name, "type": 1, "env_kwargs": kwargs})
        assert resolved == {"env_id": env_id, "env_kwargs": {"env_kwargs": kwargs}}
