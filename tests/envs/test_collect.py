"""`dopr-robot collect`: demonstrations into zarr, provenance, resume, overwrite, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from dopr_robot.cli import main
from dopr_robot.datasets import ReplayBuffer, SequenceDataset
from dopr_robot.envs import collect as collect_module
from dopr_robot.envs.collect import collect
from dopr_robot.envs.config import CollectConfig
from dopr_robot.errors import DataError, UserError

REACH = "dopr_robot/ReachChain-v0"


def config(**overrides) -> CollectConfig:
    settings = dict(env_id=REACH, task_horizon=2, episodes=3, seed=5, noise=0.1)
    return CollectConfig(**{**settings, **overrides})


def test_collect_then_data_info_round_trip(tmp_path, capsys):
    out = tmp_path / "demos.zarr"
    argv = ["collect", "--env", REACH, "--task-horizon", "2", "--episodes", "3", "--out", str(out)]
    assert main([*argv, "--image", "--noise", "0.1", "--seed", "5", "--quiet"]) == 0
    assert "3 episodes stored" in capsys.readouterr().out
    assert main(["data", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "episodes: 3" in info and "image" in info and "(96, 96, 3)" in info
    assert "env_id: dopr_robot/ReachChain-v0" in info
    buffer = ReplayBuffer.open(out)
    assert buffer.keys["state"] == ((15,), np.dtype("float32"))
    assert buffer.keys["action"] == ((3,), np.dtype("float32"))
    assert buffer.attrs["collect"]["noise"] == 0.1 and buffer.attrs["episode_seeds"] == [5, 6, 7]
    dataset = SequenceDataset(out, obs_keys=["state", "image"])
    assert dataset[0]["obs"]["image"].dtype == torch.uint8


def test_stored_episodes_replay_to_success(tmp_path):
    """The executed actions, replayed from the recorded seed, succeed: rows line up with steps."""
    import dopr_robot.envs as envs

    out = tmp_path / "demos.zarr"
    collect(config(), out, progress=False)
    buffer = ReplayBuffer.open(out)
    env = envs.make(REACH, task_horizon=2)
    for index, seed in enumerate(buffer.attrs["episode_seeds"]):
        episode = buffer.get_episode(index)
        observation, _ = env.reset(seed=seed)
        for state, action in zip(episode["state"], episode["action_executed"], strict=True):
            np.testing.assert_array_equal(observation["state"], state)
            observation, _, terminated, truncated, info = env.step(action)
        assert terminated and info["success"]
    env.close()


@pytest.mark.parametrize("env_id", [REACH, "dopr_robot/Balance-v0"])
def test_labels_are_the_experts_clean_actions_on_the_stored_states(tmp_path, env_id):
    """DART: with noise, `action` is the noiseless expert's output on each stored state and
    `action_executed` is what was stepped (different from it); the store says so."""
    from dopr_robot.envs.registry import expert_for

    out = tmp_path / "demos.zarr"
    horizon = 2 if env_id == REACH else 40
    collect(config(env_id=env_id, task_horizon=horizon, noise=0.2), out, progress=False)
    buffer = ReplayBuffer.open(out)
    assert buffer.attrs["action_label"] == "clean"
    data = buffer.load(["state", "action", "action_executed"])
    noiseless = expert_for(env_id, noise=0.0)
    expected = np.stack([noiseless.act({"state": state}) for state in data["state"]])
    np.testing.assert_allclose(data["action"], expected, atol=1e-6)
    assert np.abs(data["action_executed"] - data["action"]).mean() > 0.05


def test_an_old_store_with_executed_labels_trains_but_is_not_resumed(tmp_path):
    """A store from before clean labels (no `action_label`) still loads; resuming it would mix
    two label conventions, so it is refused with a sentence."""
    out = tmp_path / "demos.zarr"
    collect(config(), out, progress=False)
    ReplayBuffer.open(out, mode="a").update_attrs(action_label=None)
    assert SequenceDataset(out, obs_keys=["state"])[0]["action"].shape[-1] == 3
    with pytest.raises(DataError, match="collected before clean labels"):
        collect(config(episodes=4), out, resume=True, progress=False)


def test_resume_equals_an_uninterrupted_collection(tmp_path):
    whole, parts = tmp_path / "whole.zarr", tmp_path / "parts.zarr"
    collect(config(episodes=4), whole, progress=False)
    collect(config(episodes=2), parts, progress=False)
    collect(config(episodes=4), parts, resume=True, progress=False)
    a, b = ReplayBuffer.open(whole), ReplayBuffer.open(parts)
    np.testing.assert_array_equal(a.episode_ends, b.episode_ends)
    for key in ("state", "action"):
        np.testing.assert_array_equal(a.load([key])[key], b.load([key])[key])
    assert a.attrs["episode_seeds"] == b.attrs["episode_seeds"]


def test_resume_recovers_an_episode_committed_but_not_recorded(tmp_path, monkeypatch):
    out = tmp_path / "demos.zarr"
    real_update = ReplayBuffer.update_attrs
    calls = {"n": 0}

    def killed_after_second_commit(self, **attrs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if killed between add_episode and the record
        real_update(self, **attrs)

    monkeypatch.setattr(ReplayBuffer, "update_attrs", killed_after_second_commit)
    with pytest.raises(KeyboardInterrupt):
        collect(config(episodes=3), out, progress=False)
    monkeypatch.setattr(ReplayBuffer, "update_attrs", real_update)
    buffer = ReplayBuffer.open(out)
    assert buffer.n_episodes == 2 and buffer.attrs["episode_seeds"] == [5]
    collect(config(episodes=3), out, resume=True, progress=False)
    resumed = ReplayBuffer.open(out)
    whole = tmp_path / "whole.zarr"
    collect(config(episodes=3), whole, progress=False)
    assert (
        resumed.attrs["episode_seeds"]
        == [5, 6, 7]
        == ReplayBuffer.open(whole).attrs["episode_seeds"]
    )
    np.testing.assert_array_equal(
        resumed.load(["action"])["action"], ReplayBuffer.open(whole).load(["action"])["action"]
    )


def test_existing_store_needs_resume_or_overwrite_and_is_untouched(tmp_path, tree_digest):
    out = tmp_path / "demos.zarr"
    collect(config(), out, progress=False)
    before = tree_digest(out)
    with pytest.raises(DataError, match="already exists; pass --resume .* or --overwrite"):
        collect(config(), out, progress=False)
    with pytest.raises(DataError, match="collected with noise=0.1, not 0.5"):
        collect(config(noise=0.5), out, resume=True, progress=False)
    with pytest.raises(UserError, match="exclude each other"):
        collect(config(), out, resume=True, overwrite=True, progress=False)
    assert tree_digest(out) == before


def test_overwrite_replaces_only_when_the_new_store_is_complete(tmp_path, monkeypatch, tree_digest):
    out = tmp_path / "demos.zarr"
    collect(config(), out, progress=False)
    before = tree_digest(out)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(collect_module, "run_episode", broken)
    with pytest.raises(RuntimeError):
        collect(config(seed=9), out, overwrite=True, progress=False)
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.zarr"]
    monkeypatch.undo()
    collect(config(seed=9), out, overwrite=True, progress=False)
    assert ReplayBuffer.open(out).attrs["episode_seeds"] == [9, 10, 11]


def test_keep_failed_stores_failures_and_a_weak_expert_stops_with_a_sentence(tmp_path):
    hard = dict(env_id="dopr_robot/PushChain-v0", task_horizon=2, perturbation=3.0, noise=0.0)
    kept = tmp_path / "all.zarr"
    collect(config(**hard, episodes=4, keep_failed=True), kept, progress=False)
    attrs = ReplayBuffer.open(kept).attrs
    assert attrs["attempts"] == 4 and False in attrs["episode_success"]
    with pytest.raises(DataError, match=r"expert succeeded in only \d+ of 20 attempts"):
        collect(config(**hard, episodes=30), tmp_path / "few.zarr", progress=False)


def test_bad_arguments_are_one_sentence_and_exit_2(tmp_path):
    cases = [
        (["--env", "dopr_robot/Nope-v0"], "unknown env 'dopr_robot/Nope-v0'"),
        (["--env", REACH, "--episodes", "0"], "bad flag: --episodes = 0 is not valid"),
        (["--env", REACH, "--noise", "-1"], "bad flag: --noise = -1.0 is not valid"),
        (["--env", REACH, "--task", "reach-v3"], "--task is only for dopr_robot/MetaWorld-v0"),
    ]
    for extra, message in cases:
        argv = ["--task-horizon", "2", "--episodes", "2", "--out", str(tmp_path / "x.zarr")]
        result = subprocess.run(
            [sys.executable, "-m", "dopr_robot.cli", "collect", *argv, *extra],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [f"dopr-robot: error: {message}"] or (
            message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        )
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.zarr").exists()


def test_data_info_shortens_per_episode_lists(tmp_path, capsys):
    out = tmp_path / "demos.zarr"
    collect(
        config(env_id="dopr_robot/Balance-v0", task_horizon=3, episodes=20), out, progress=False
    )
    assert main(["data", "info", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "episode_seeds" in x)
    assert line.endswith("(20 items)") and "..." in line and "5, 6," in line and "24]" in line


def test_stores_are_zarr_format_2_by_default_and_3_on_request(tmp_path, capsys):
    """Format 2 by default (diffusion_policy's zarr-2 code opens only that); a resume keeps the
    store's format and refuses a different --zarr-format with one sentence."""
    argv = ["collect", "--env", REACH, "--task-horizon", "1", "--episodes", "1", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "two.zarr")]) == 0
    assert (tmp_path / "two.zarr" / ".zgroup").is_file()
    assert (tmp_path / "two.zarr" / "meta" / "episode_ends" / ".zarray").is_file()
    assert not (tmp_path / "two.zarr" / "zarr.json").exists()
    assert main([*argv, "--out", str(tmp_path / "three.zarr"), "--zarr-format", "3"]) == 0
    assert ReplayBuffer.open(tmp_path / "three.zarr").zarr_format == 3
    capsys.readouterr()
    resume = [*argv[:-3], "--episodes", "2", "--quiet", "--resume"]
    assert main([*resume, "--out", str(tmp_path / "two.zarr"), "--zarr-format", "3"]) == 2
    assert "is zarr format 2; --zarr-format 3 applies to new stores" in capsys.readouterr().err
    assert ReplayBuffer.open(tmp_path / "two.zarr").n_episodes == 1
    assert main([*resume, "--out", str(tmp_path / "two.zarr")]) == 0
    resumed = ReplayBuffer.open(tmp_path / "two.zarr")
    assert resumed.zarr_format == 2 and resumed.n_episodes == 2


def test_no_room_during_an_append_is_one_sentence_and_the_episodes_before_it_stay(tmp_path):
    """A file-size limit (EFBIG, handled like a full disk) stops `collect --resume` at its first
    write: one sentence naming the store, exit 2, and the episodes committed before still read."""
    out = tmp_path / "demos.zarr"
    collect(config(episodes=3), out, progress=False)
    limit = (
        "import resource, signal, sys;"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64));"
        "from dopr_robot.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    settings = config(episodes=3)
    command = ["collect", "--env", settings.env_id, "--task-horizon", str(settings.task_horizon),
               "--episodes", "6", "--noise", str(settings.noise), "--seed", str(settings.seed),
               "--out", str(out), "--resume",
               "--quiet"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", limit, *command], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert (
        f"no room to write {out}" in lines[0]
        and "every episode committed before is kept" in (lines[0])
    )
    assert ReplayBuffer.open(out).n_episodes == 3
    assert len(ReplayBuffer.open(out).load()["action"]) == ReplayBuffer.open(out).n_steps
