"""The env adapter contract: resolving ids, a user's gymnasium env, PushT as a chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dopr_robot.cli import main
from dopr_robot.envs import make
from dopr_robot.envs.adapter import HORIZON_KINDS
from dopr_robot.envs.registry import resolve_env
from dopr_robot.errors import UserError
from dopr_robot.eval.agents import ExpertAgent
from dopr_robot.eval.rollout import run_episodes

USER_MODULE = "tests.envs.point_goal_env"
USER_CLASS = f"{USER_MODULE}:PointGoalEnv"
PUSHT = "gym_pusht/PushT-v0"
ROOT = Path(__file__).resolve().parents[2]


def test_every_kind_of_id_resolves_to_an_adapter_with_a_declared_horizon_kind():
    meanings = {
        "dopr_robot/ReachChain-v0": "native-chain",
        "dopr_robot/Balance-v0": "step-budget",
        PUSHT: "replaced-chain",
        USER_CLASS: "step-budget",
        f"{USER_MODULE}:PointGoal-v0": "step-budget",
    }
    for env_id, meaning in meanings.items():
        adapter = resolve_env(env_id)
        assert adapter.horizon_kind == meaning and meaning in HORIZON_KINDS


@pytest.mark.parametrize(
    ("env_id", "sentence"),
    [
        ("dopr_robot/Nope-v0", "unknown env 'dopr_robot/Nope-v0'"),
        ("no_such_module:Env", "cannot import 'no_such_module'"),
        (f"{USER_MODULE}:Nope", "has no gymnasium env class 'Nope'"),
        ("", "non-empty string"),
    ],
)
def test_ids_no_adapter_knows_are_one_sentence(env_id, sentence):
    with pytest.raises(UserError, match=sentence):
        resolve_env(env_id)


def test_a_user_env_speaks_the_protocol_with_a_step_budget():
    env = make(USER_CLASS, task_horizon=2, steps_per_horizon=5)
    observation, info = env.reset(seed=3)
    assert set(observation) == {"state"} and observation["state"].dtype == np.float32
    assert info == {"success": False, "subgoals_done": 0, "score": 0.0}
    steps = 0
    truncated = terminated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(np.zeros(2, np.float32))  # stands still
        steps += 1
    assert truncated and not terminated and steps == 10 and not info["success"]
    # the same seed is the same layout; success ends the episode with subgoals_done 1
    first, _ = env.reset(seed=3)
    assert np.array_equal(first["state"], observation["state"])
    state = first["state"]
    for _ in range(100):
        action = np.clip((state[2:] - state[:2]) / 0.1, -1, 1)
        step = env.step(action)
        state = step[0]["state"]
        if step[2]:
            break
    # without a score key the score is the episode's best reward (1 at success here)
    assert step[4] == {"success": True, "subgoals_done": 1, "score": 1.0}


def test_a_user_env_scores_by_the_best_value_of_its_score_key():
    env = make(USER_CLASS, task_horizon=1, steps_per_horizon=20, score_key="closeness")
    observation, _ = env.reset(seed=3)
    state, best = observation["state"], 0.0
    for action in ([1, 1], [-1, -1], [-1, -1]):  # a step that moves away lowers closeness
        observation, _, _, _, info = env.step(np.array(action, np.float32))
        closeness = max(0.0, 1.0 - float(np.linalg.norm(state[2:] - observation["state"][:2])))
        best = max(best, closeness)
        assert info["score"] == pytest.approx(best, abs=1e-6)
    with pytest.raises(UserError, match=r"does not report info\['nope'\]; name a key"):
        missing = make(USER_CLASS, task_horizon=1, score_key="nope")
        missing.reset(seed=0)
        missing.step(np.zeros(2, np.float32))


def test_what_a_user_env_lacks_is_one_sentence():
    with pytest.raises(UserError, match=r"does not report info\['is_success'\]"):
        resolve_env(f"{USER_MODULE}:NoSuccessEnv").check(task_horizon=1)
    with pytest.raises(UserError, match="no perturbation setting"):
        make(USER_CLASS, task_horizon=1, perturbation=0.5)
    with pytest.raises(UserError, match="no scripted expert"):
        resolve_env(USER_CLASS).expert()
    # a success key named by the user is read instead
    resolve_env(f"{USER_MODULE}:NoSuccessEnv")  # resolves
    env = make(USER_CLASS, task_horizon=1, success_key="goal_reached")
    env.reset(seed=0)
    with pytest.raises(UserError, match=r"info\['goal_reached'\]"):
        env.step(np.zeros(2, np.float32))


def test_pusht_observations_use_diffusion_policys_keys():
    env = make(PUSHT, task_horizon=1, image=True)
    observation, info = env.reset(seed=0)
    assert observation["state"].shape == (5,) and observation["state"].dtype == np.float32
    assert observation["img"].shape == (96, 96, 3) and observation["img"].dtype == np.uint8
    assert info["subgoals_done"] == 0 and not info["success"]
    env.close()
    with pytest.raises(UserError, match="no perturbation setting"):
        make(PUSHT, task_horizon=1, perturbation=1.0)


def test_the_pusht_expert_chains_pushes_and_the_block_is_replaced_by_seed():
    episodes = run_episodes(PUSHT, ExpertAgent(PUSHT), [11, 12], 2, n_envs=2)
    assert all(e.success and e.subgoals_done == 2 for e in episodes), episodes
    again = run_episodes(PUSHT, ExpertAgent(PUSHT), [11], 2, n_envs=1)
    assert again[0].length == episodes[0].length  # seeded layout, re-placements and expert


def test_pusht_keypoints_are_the_blocks_corners_and_continuous_across_the_angle_wrap():
    from dopr_robot.envs.pusht_expert import T_CORNERS, to_world

    env = make(PUSHT, task_horizon=1)
    observation, _ = env.reset(seed=0)
    state = observation["state"]
    assert np.array_equal(observation["agent_pos"], state[:2])
    corners = observation["block_keypoints"].reshape(8, 2)
    pose = np.array([env.env.block.position.x, env.env.block.position.y, env.env.block.angle])
    assert np.allclose(corners, to_world(T_CORNERS, pose), atol=1e-3)
    # just below and just above 2π: the angle in `state` jumps by 2π, the keypoints do not
    near_wrap = [to_world(T_CORNERS, np.array([256.0, 256.0, a])) for a in (-1e-4, 1e-4)]
    assert np.abs(near_wrap[0] - near_wrap[1]).max() < 0.05
    env.close()


def test_the_pusht_score_is_the_best_coverage_over_095_and_counts_pushes_in_a_chain():
    episodes = run_episodes(PUSHT, ExpertAgent(PUSHT), [11], 2, n_envs=1)
    assert episodes[0].success and episodes[0].score == 1.0
    env = make(PUSHT, task_horizon=2)
    env.reset(seed=4)
    best = 0.0
    for _ in range(5):  # a few steps towards the block: the score tracks the best coverage
        _, _, _, _, info = env.step(np.array([256.0, 256.0]))
        best = max(best, min(info["coverage"] / 0.95, 1.0))
        assert info["score"] == pytest.approx(best / 2)  # no push done yet, H = 2
    env.subgoals_done = 1  # one push done: half the chain, plus half the best of this one
    assert env._info(0.0)["score"] == pytest.approx((1 + best) / 2)
    env.close()


def test_a_pusht_chain_is_truncated_per_push():
    env = make(PUSHT, task_horizon=3, steps_per_push=7)
    env.reset(seed=0)
    ended = [env.step(np.array([20.0, 20.0]))[3] for _ in range(7)]
    assert ended == [False] * 6 + [True]


def _cli(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dopr_robot.cli", *argv], capture_output=True, text=True, cwd=cwd
    )


def test_a_user_env_class_collects_trains_and_evaluates_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT))
    data, run = tmp_path / "d.zarr", tmp_path / "run"
    assert (
        main(
            [
                "collect", "--env", USER_CLASS, "--expert", f"{USER_MODULE}:PointGoalExpert",
                "--task-horizon", "1", "--episodes", "12", "--out", str(data), "--quiet",
            ]
        )
        == 0
    )  # fmt: skip
    assert (
        main(
            [
                "train", "--data", str(data), "--out", str(run), "--steps", "60",
                "--policy", "regression", "--backbone", "mlp", "--quiet",
            ]
        )
        == 0
    )  # fmt: skip
    out = tmp_path / "eval"
    argv = ["eval", "--ckpt", str(run), "--task-horizons", "1,2", "--episodes", "3"]
    assert main([*argv, "--video", "--out", str(out), "--quiet"]) == 0
    assert (out / "videos" / "H0002.mp4").stat().st_size > 0
    # the registered id through --env-import, with a setting passed to the budget
    again = tmp_path / "again"
    flags = ["--env-import", USER_MODULE, "--env", "PointGoal-v0"]
    extra = ["--env-setting", "steps_per_horizon=5", "--out", str(again), "--quiet"]
    assert main([*argv, *flags, *extra]) == 0
    # a score key the env never sets: one sentence, exit 2, no eval folder
    capsys.readouterr()
    missing = tmp_path / "missing-key"
    assert main([*argv, "--score-key", "nope", "--out", str(missing), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "does not report info['nope']" in lines[0], lines
    assert not missing.exists()


def test_bad_env_inputs_to_eval_are_one_sentence_exit_2_and_write_nothing(tmp_path, capsys):
    data, run = tmp_path / "d.zarr", tmp_path / "run"
    collect = ["collect", "--env", PUSHT, "--task-horizon", "1", "--episodes", "2"]
    assert main([*collect, "--out", str(data), "--quiet"]) == 0
    train = ["train", "--data", str(data), "--out", str(run), "--steps", "4"]
    assert main([*train, "--policy", "regression", "--backbone", "mlp", "--quiet"]) == 0
    capsys.readouterr()
    cases = [
        (["--env", "nowhere/Nothing-v0"], "unknown env 'nowhere/Nothing-v0'"),
        (["--env", f"{USER_MODULE}:NoSuccessEnv"], "does not report info['is_success']"),
        (["--env", USER_CLASS], "the store's keys do not match the env"),
        (["--env-import", USER_MODULE], "--env-import needs --env"),
        (["--env-setting", "oops"], "--env-setting takes KEY=VALUE"),
    ]
    out = tmp_path / "eval"
    for flags, sentence in cases:
        argv = ["eval", "--ckpt", str(run), "--episodes", "1", "--out", str(out), *flags]
        assert main(argv) == 2, flags
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and sentence in lines[0], (flags, lines)
        assert not out.exists()
    # and as a process: exit status 2, no traceback
    result = _cli("eval", "--ckpt", str(run), "--out", str(out), "--env", USER_CLASS)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the store's keys do not match the env" in result.stderr and not out.exists()


def test_collect_refuses_an_env_without_an_expert_and_a_bad_expert_class(tmp_path, capsys):
    out = tmp_path / "x.zarr"
    for flags, sentence in [
        ([], "has no scripted expert"),
        (["--expert", f"{USER_MODULE}:PointGoalEnv"], "is not a dopr_robot.envs.experts.Expert"),
        (["--expert", "no_module:Expert"], "cannot import the expert"),
    ]:
        argv = ["collect", "--env", USER_CLASS, "--task-horizon", "1", "--episodes", "1"]
        assert main([*argv, "--out", str(out), *flags]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and sentence in lines[0], lines
        assert not out.exists()


def test_pusht_collects_trains_and_evaluates_across_horizons_with_videos(tmp_path):
    data, run, out = tmp_path / "pusht.zarr", tmp_path / "run", tmp_path / "eval"
    collect = ["collect", "--env", PUSHT, "--task-horizon", "2", "--episodes", "2", "--noise", "3"]
    assert main([*collect, "--out", str(data), "--quiet"]) == 0
    train = ["train", "--data", str(data), "--out", str(run), "--steps", "20", "--policy", "flow"]
    assert main([*train, "--backbone", "mlp", "--inference-steps", "2", "--quiet"]) == 0
    evaluate = ["eval", "--ckpt", str(run), "--task-horizons", "1,2,4", "--episodes", "1"]
    assert main([*evaluate, "--video", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [c["task_horizon"] for c in results["cells"]] == [1, 2, 4]
    assert all((out / "videos" / f"H{h:04d}.mp4").stat().st_size > 0 for h in (1, 2, 4))


def test_a_store_in_diffusion_policys_pusht_layout_evaluates_on_gym_pusht(tmp_path, capsys):
    """Keys and dtypes of diffusion_policy's pusht_cchi_v7_replay.zarr (format 2, no collect
    provenance): the env must be named, then a `state` policy runs on gym-pusht."""
    from dopr_robot.datasets import ReplayBuffer
    from dopr_robot.envs.collect import run_episode

    env, expert = make(PUSHT, task_horizon=1, image=True), resolve_env(PUSHT).expert()
    store = ReplayBuffer.create(tmp_path / "pusht_cchi.zarr", zarr_format=2)
    for seed in (0, 1):
        episode, success = run_episode(env, expert, seed, seed)
        assert success
        n = len(episode["action"])
        store.add_episode(
            {
                "img": episode["img"],
                "state": episode["state"],
                "keypoint": np.zeros((n, 9, 2), np.float32),
                "action": episode["action"],
                "n_contacts": np.zeros((n, 1), np.float32),
            }
        )
    env.close()
    run = tmp_path / "run"
    train = ["train", "--data", str(tmp_path / "pusht_cchi.zarr"), "--out", str(run)]
    assert main([*train, "--steps", "4", "--policy", "regression", "--backbone", "mlp"]) == 0
    evaluate = ["eval", "--ckpt", str(run), "--task-horizons", "1", "--episodes", "1"]
    capsys.readouterr()
    assert main([*evaluate, "--out", str(tmp_path / "none"), "--quiet"]) == 2
    assert "do not name their env" in capsys.readouterr().err
    assert main([*evaluate, "--env", PUSHT, "--out", str(tmp_path / "e"), "--quiet"]) == 0
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert results["env"]["id"] == PUSHT and len(results["episodes"]) == 1
