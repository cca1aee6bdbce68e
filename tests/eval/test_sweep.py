"""The sweep end to end on a tiny trained policy: schema-valid results, decodable videos with
the expected frame count, resume without redoing episodes, the render command, bad input."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from dopr_robot.cli import main
from dopr_robot.envs.collect import collect
from dopr_robot.envs.config import CollectConfig
from dopr_robot.errors import UserError
from dopr_robot.eval import sweep as sweep_module
from dopr_robot.eval.config import EvalConfig
from dopr_robot.eval.episode import row_fields
from dopr_robot.eval.schema import upgrade, validate
from dopr_robot.eval.stats import area_under_curve
from dopr_robot.eval.sweep import evaluate
from dopr_robot.policies import PolicyConfig
from dopr_robot.train import TrainConfig, train

POLICY = PolicyConfig(
    mlp_width=32, mlp_depth=1, pred_horizon=8, action_horizon=4, inference_steps=2
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    store = folder / "balance.zarr"
    collect(
        CollectConfig(
            env_id="dopr_robot/Balance-v0",
            task_horizon=60,
            episodes=6,
            noise=0.05,
            perturbation=0.4,
        ),
        store,
        progress=False,
    )
    settings = TrainConfig(
        data=str(store),
        out=str(folder / "run"),
        steps=4,
        batch_size=16,
        val_every=4,
        checkpoint_every=4,
        val_ratio=0.2,
    )
    train(settings, POLICY, progress=False)
    return folder / "run"


def test_results_follow_the_schema_and_hold_what_was_run(run, tmp_path):
    config = EvalConfig(
        checkpoint=str(run),
        task_horizons=[5, 20],
        episodes=4,
        n_envs=2,
        inference_steps=[1, 2],
        video=True,
        video_episodes=2,
        out=str(tmp_path / "eval"),
    )
    results = evaluate(config, progress=False)
    assert validate(results) == []
    on_disk = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert validate(on_disk) == [] and on_disk["cells"] == results["cells"]
    assert results["env"]["id"] == "dopr_robot/Balance-v0"
    assert results["env"]["kwargs"]["perturbation"] == 0.4  # as collected
    assert results["env"]["seeds"] == [2_000_000, 2_000_001, 2_000_002, 2_000_003]
    assert {(c["task_horizon"], c["inference_steps"]) for c in results["cells"]} == {
        (5, 1),
        (5, 2),
        (20, 1),
        (20, 2),
    }
    assert len(results["episodes"]) == 16 and len(results["curves"]) == 2
    assert all(c["chunk_latency_ms"] > 0 for c in results["cells"])
    lines = (tmp_path / "eval" / "episodes.csv").read_text().splitlines()
    assert len(lines) == 17 and lines[0].startswith("task_horizon,inference_steps,seed")
    assert (tmp_path / "eval" / "success_vs_horizon.png").stat().st_size > 10_000
    for horizon in (5, 20):  # failed episodes first, then successes, two per video
        rows = [
            r
            for r in results["episodes"]
            if r["task_horizon"] == horizon and r["inference_steps"] == 2
        ]
        chosen = ([r for r in rows if not r["success"]] + [r for r in rows if r["success"]])[:2]
        video = iio.imread(tmp_path / "eval" / "videos" / f"H{horizon:04d}.mp4")
        # one frame after reset and one per step of the longest episode shown
        assert video.shape[0] == max(r["length"] for r in chosen) + 1
        assert video.shape[1:] == (256, 512, 3)  # two 256x256 tiles side by side


def test_schema_catches_a_broken_file(run, tmp_path):
    results = evaluate(
        EvalConfig(checkpoint=str(run), task_horizons=[3], episodes=2, out=str(tmp_path / "e")),
        progress=False,
    )
    broken = json.loads(json.dumps(results))
    del broken["cells"][0]["wilson_low"]
    broken["episodes"][0]["success"] = "yes"
    problems = validate(broken)
    assert "results.cells[0]: 'wilson_low' is a required property" in problems
    assert "results.episodes[0].success: 'yes' is not of type 'boolean'" in problems


def test_the_score_is_recorded_per_episode_per_cell_and_per_curve(run, tmp_path):
    results = evaluate(
        EvalConfig(checkpoint=str(run), task_horizons=[3, 6], episodes=3, out=str(tmp_path / "e")),
        progress=False,
    )
    for cell in results["cells"]:
        rows = [r for r in results["episodes"] if r["task_horizon"] == cell["task_horizon"]]
        # balance: the score is the share of the horizon survived
        assert all(r["score"] == min(r["subgoals_done"] / r["task_horizon"], 1.0) for r in rows)
        assert cell["mean_score"] == pytest.approx(np.mean([r["score"] for r in rows]))
    (curve,) = results["curves"]
    scores = [c["mean_score"] for c in sorted(results["cells"], key=lambda c: c["task_horizon"])]
    assert curve["score_auc"] == pytest.approx(area_under_curve([3, 6], scores))
    header = (tmp_path / "e" / "episodes.csv").read_text().splitlines()[0].split(",")
    assert header == row_fields() and "score" in header


def test_a_version_1_results_file_still_loads(run, tmp_path):
    results = evaluate(
        EvalConfig(checkpoint=str(run), task_horizons=[3], episodes=2, out=str(tmp_path / "e")),
        progress=False,
    )
    old = json.loads(json.dumps(results))
    old["schema"] = "dopr-robot/eval-results/1"
    for key, records in (("mean_score", "cells"), ("score_auc", "curves"), ("score", "episodes")):
        for record in old[records]:
            del record[key]
    assert validate(old)  # not today's shape ...
    upgraded = upgrade(old)
    assert validate(upgraded) == []  # ... but read as it
    assert upgraded["cells"][0]["mean_score"] is None and upgraded["episodes"][0]["score"] is None
    assert upgraded["cells"][0]["success_rate"] == results["cells"][0]["success_rate"]


def test_an_interrupted_eval_resumes_without_redoing_episodes(run, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    config = EvalConfig(
        checkpoint=str(run), task_horizons=[5, 10], episodes=4, n_envs=2, out=str(out)
    )
    calls = []
    original = sweep_module.run_episodes

    def counted(*args, **kwargs):
        calls.append((args[3], list(args[2])))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "run_episodes", counted)
    with pytest.raises(KeyboardInterrupt):
        evaluate(config, progress=False)
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 4  # H=5 finished
    with pytest.raises(UserError, match="already exists; pass --resume"):
        evaluate(config, progress=False)
    calls.clear()
    results = evaluate(config, resume=True, progress=False)
    assert [h for h, _ in calls] == [10]  # only the unfinished horizon ran again
    assert len(results["episodes"]) == 8


def test_eval_and_render_commands(run, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = [
        "eval",
        "--ckpt",
        str(run),
        "--task-horizons",
        "4,8",
        "--episodes",
        "2",
        "--out",
        str(out),
        "--quiet",
        "--execute",
        "2",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "H=4" in printed and "AUC" in printed
    video = tmp_path / "one.mp4"
    assert (
        main(
            [
                "render",
                "--ckpt",
                str(run),
                "--seed",
                "7",
                "--task-horizon",
                "6",
                "--out",
                str(video),
            ]
        )
        == 0
    )
    assert 2 <= iio.imread(video).shape[0] <= 7
    for bad, message in [
        (["eval", "--ckpt", str(tmp_path / "none")], "does not exist"),
        (argv, "already exists; pass --resume"),
        (
            ["eval", "--ckpt", str(run), "--execute", "9", "--out", str(tmp_path / "x")],
            "between 1 and the policy's Ta=4",
        ),
        (
            [
                "render",
                "--ckpt",
                str(run),
                "--seed",
                "1",
                "--task-horizon",
                "3",
                "--out",
                str(video),
            ],
            "already exists; pass --overwrite",
        ),
    ]:
        assert main(bad) == 2, bad
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (bad, lines)


def test_spearman_against_known_values():
    from dopr_robot.eval.stats import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([1, 1, 2], [3, 3, 3]) is None


def test_all_checkpoints_puts_validation_loss_beside_success(run, tmp_path, capsys):
    out = tmp_path / "ckpts"
    argv = [
        "eval",
        "--ckpt",
        str(run),
        "--all-checkpoints",
        "--task-horizons",
        "4",
        "--episodes",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    summary = json.loads((out / "checkpoint_sweep.json").read_text())
    assert [r["checkpoint"] for r in summary["checkpoints"]] == ["step_0000004"]
    assert summary["checkpoints"][0]["val_loss"] is not None
    assert (out / "val_loss_vs_success.png").exists()
    assert "Spearman(val_loss, AUC) = n/a" in capsys.readouterr().out  # one checkpoint only


def test_resuming_with_other_settings_is_refused(run, tmp_path):
    out = str(tmp_path / "eval")
    evaluate(
        EvalConfig(checkpoint=str(run), task_horizons=[3], episodes=2, out=out), progress=False
    )
    other = EvalConfig(checkpoint=str(run), task_horizons=[3], episodes=3, out=out)
    with pytest.raises(UserError, match=r"started with other settings \(episodes\)"):
        evaluate(other, resume=True, progress=False)


def test_device_flag_plans_where_asked_and_cuda_without_cuda_is_one_sentence(run, tmp_path, capsys):
    """--device cpu and --device auto (CPU here) give the same episodes; asking for CUDA on a
    machine without it is one sentence, exit 2, and no output directory."""
    import torch

    common = ["eval", "--ckpt", str(run), "--task-horizons", "4", "--episodes", "2", "--quiet"]
    for device in ("cpu", "auto"):
        assert main([*common, "--device", device, "--out", str(tmp_path / device)]) == 0
    # bf16 autocast is a CUDA setting: recorded, and on a CPU the episodes are the same
    assert main([*common, "--bf16", "--out", str(tmp_path / "bf16")]) == 0
    bf16 = json.loads((tmp_path / "bf16" / "results.json").read_text())
    assert bf16["config"]["bf16"] is True
    capsys.readouterr()
    rows = {
        device: json.loads((tmp_path / device / "results.json").read_text())["episodes"]
        for device in ("cpu", "auto")
    }
    assert rows["cpu"] == [
        {**r, "seconds": rows["cpu"][i]["seconds"]} for i, r in enumerate(rows["auto"])
    ]
    if not torch.cuda.is_available():
        assert main([*common, "--device", "cuda", "--out", str(tmp_path / "cuda")]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
        assert not (tmp_path / "cuda").exists()
        argv = ["render", "--ckpt", str(run), "--seed", "1", "--task-horizon", "2"]
        assert main([*argv, "--out", str(tmp_path / "r.mp4"), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
        assert not (tmp_path / "r.mp4").exists()


def test_a_sweep_saved_before_env_settings_existed_still_resumes(run, tmp_path):
    out = tmp_path / "eval"
    config = EvalConfig(checkpoint=str(run), task_horizons=[5], episodes=2, n_envs=2, out=str(out))
    evaluate(config, progress=False)
    saved = json.loads((out / "eval_config.json").read_text())
    del saved["env_settings"]  # as written before the setting existed
    (out / "eval_config.json").write_text(json.dumps(saved))
    assert len(evaluate(config, resume=True, progress=False)["episodes"]) == 2
    other = EvalConfig(
        checkpoint=str(run), task_horizons=[5], episodes=2, out=str(out),
        perturbation=0.1, n_envs=2,
    )  # fmt: skip
    with pytest.raises(UserError, match="other settings"):
        evaluate(other, resume=True, progress=False)


def test_sigterm_to_an_async_eval_ends_its_env_processes_and_the_rerun_resumes(run, tmp_path):
    """`eval --async` runs each env in a process: a stop signal ends them all, says one
    sentence, keeps the episodes finished so far, and `--resume` runs only the rest. (The
    barely trained policy falls within steps, so 120 episodes, 30 batches of 4 each with their
    own env processes, keep the eval running when the signal comes.)"""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "eval"
    command = [sys.executable, "-m", "dopr_robot.cli", "eval", "--ckpt", str(run), "--out",
               str(out), "--task-horizons", "200", "--episodes", "120", "--n-envs", "2", "--async",
               "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    rows = out / "episodes.jsonl"
    deadline = time.monotonic() + 120
    while not (rows.exists() and rows.read_text().count("\n") >= 4) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 2, error
    lines = error.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dopr-robot: stopped by SIGTERM; "), lines
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of the eval's process group is left
    done = rows.read_text().count("\n")
    assert 4 <= done < 120
    finished = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    results = json.loads((out / "results.json").read_text())
    assert len(results["episodes"]) == 120 and rows.read_text().count("\n") == 120


def test_a_cut_results_file_is_one_sentence_naming_it(run, tmp_path):
    from dopr_robot.errors import DataError
    from dopr_robot.eval.results import read_results

    out = tmp_path / "eval"
    config = EvalConfig(checkpoint=str(run), out=str(out), task_horizons=[2], episodes=2)
    evaluate(config, progress=False)
    path = out / "results.json"
    whole = path.read_bytes()
    assert read_results(path)["cells"]
    path.write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with pytest.raises(DataError, match=rf"{path} is not a readable results file"):
        read_results(path)


HOLD = """
import sys, time
from dopr_robot.folder_lock import FolderLock
FolderLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_an_eval_into_a_folder_another_process_writes_is_refused(run, tmp_path):
    import subprocess
    import sys

    from dopr_robot.folder_lock import LOCK_NAME

    out = tmp_path / "eval"
    config = EvalConfig(checkpoint=str(run), task_horizons=[3], episodes=2, out=str(out))
    evaluate(config, progress=False)
    rows = (out / "episodes.jsonl").read_text()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        for resume, overwrite in [(True, False), (False, True)]:
            with pytest.raises(UserError, match=f"pid {holder.pid}"):
                evaluate(config, resume=resume, overwrite=overwrite, progress=False)
        assert (out / "episodes.jsonl").read_text() == rows  # not appended to, not wiped
    finally:
        holder.kill()
        holder.wait()
    evaluate(config, overwrite=True, progress=False)  # the holder is gone: it runs again
    assert not (out / LOCK_NAME).exists()
    assert (out / "results.json").exists()
