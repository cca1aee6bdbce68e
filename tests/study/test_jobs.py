"""jobs.py without training: a job reads what a run left on disk (its newest checkpoint, a
divergence, finished evaluations) and trains, resumes, evaluates or skips accordingly; a run on
disk with other settings is refused. Training and evaluation themselves are replaced by
recorders (`jobs.train`, `jobs.evaluate`), so only the job's decisions run."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from dopr_robot.errors import UserError
from dopr_robot.study import jobs
from dopr_robot.study.config import study_from_dict
from dopr_robot.study.plan import run_configs, tuning_runs, verdict_runs
from dopr_robot.train import TrainingDiverged

from .conftest import minimal_study

TRAIN = {"steps": 4, "checkpoint_every": 2, "batch_size": 8}


def tiny_study():
    """4 training steps with budget checkpoints at steps 2 and 4, and two horizons."""
    return study_from_dict(minimal_study(train=TRAIN, budget=[0.5, 1.0], tuning_seeds=1))


def checkpoint(run_dir, step: int) -> None:
    """A finished checkpoint as far as the job can tell: its trainer state names its step."""
    path = run_dir / "checkpoints" / f"step_{step:07d}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"step": step}))


@pytest.fixture
def calls(monkeypatch):
    """Record every training and evaluation a job asks for, instead of doing it."""
    seen = {"train": [], "evaluate": []}

    def train(train_config, policy_config, resume=False, progress=True):
        seen["train"].append((train_config, resume))

    def evaluate(eval_config, resume=False, progress=True):
        seen["evaluate"].append((eval_config, resume))

    monkeypatch.setattr(jobs, "train", train)
    monkeypatch.setattr(jobs, "evaluate", evaluate)
    return seen


def test_finished_step_is_the_newest_finished_checkpoints_step(tmp_path):
    assert jobs.finished_step(tmp_path / "nothing yet") is None
    assert jobs.finished_step(tmp_path) is None
    for step in (2, 10, 4):
        checkpoint(tmp_path, step)
    (tmp_path / "checkpoints" / ".step_0000012.partial").mkdir()  # being written: not one
    assert jobs.finished_step(tmp_path) == 10


def test_diverged_reads_the_runs_record(tmp_path):
    assert jobs.diverged(tmp_path) is None
    (tmp_path / jobs.DIVERGED).write_text(json.dumps({"message": "loss is nan at step 3"}))
    assert jobs.diverged(tmp_path) == {"message": "loss is nan at step 3"}


def test_timed_adds_each_blocks_seconds_to_its_kind_even_when_it_fails(monkeypatch):
    ticks = iter([10.0, 12.5, 20.0, 21.0, 30.0, 34.0])
    monkeypatch.setattr(jobs, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    seconds = {"other": 1.0}
    with jobs.timed(seconds, "train"):
        pass
    with jobs.timed(seconds, "train"):
        pass
    with pytest.raises(RuntimeError), jobs.timed(seconds, "evaluate"):
        raise RuntimeError("stopped")
    assert seconds == {"other": 1.0, "train": 3.5, "evaluate": 4.0}


def test_a_new_run_is_trained_then_validated(tmp_path, calls):
    config = tiny_study()
    run = tuning_runs(config)[0]
    result = jobs.train_and_validate(config, str(tmp_path), run)
    ((trained, resume),) = calls["train"]
    assert trained == run_configs(config, tmp_path, run)[0] and resume is False
    ((evaluated, _),) = calls["evaluate"]
    assert (evaluated.split, evaluated.episodes) == ("validation", 20)
    assert evaluated.out == str(run.validation_dir(tmp_path))
    assert evaluated.checkpoint == str(run.directory(tmp_path))  # its latest checkpoint
    assert evaluated.task_horizons == [10, 20] and evaluated.video is False
    assert result["job"] == "tune balance/flow-c1/adamw-lr0.001-s0"
    assert set(result["seconds"]) == {"train", "validation episodes"}


def test_a_run_cut_after_a_checkpoint_resumes_and_one_cut_before_starts_over(tmp_path, calls):
    config = tiny_study()
    cut, early = tuning_runs(config)[:2]
    checkpoint(cut.directory(tmp_path), 2)
    early.directory(tmp_path).mkdir(parents=True)
    (early.directory(tmp_path) / "metrics.jsonl").write_text("{}\n")  # killed before step 2
    jobs.train_and_validate(config, str(tmp_path), cut)
    jobs.train_and_validate(config, str(tmp_path), early)
    assert [resume for _, resume in calls["train"]] == [True, False]
    assert not early.directory(tmp_path).exists()  # nothing of it kept for the fresh start


def test_a_finished_run_is_not_trained_again_and_its_finished_evaluation_not_redone(
    tmp_path, calls
):
    config = tiny_study()
    run = tuning_runs(config)[0]
    checkpoint(run.directory(tmp_path), 4)
    jobs.train_and_validate(config, str(tmp_path), run)
    assert calls["train"] == [] and len(calls["evaluate"]) == 1
    run.validation_dir(tmp_path).mkdir(parents=True)
    (run.validation_dir(tmp_path) / "results.json").write_text("{}")
    jobs.train_and_validate(config, str(tmp_path), run)
    assert calls["train"] == [] and len(calls["evaluate"]) == 1


def test_a_verdict_run_is_tested_then_each_earlier_budget_checkpoint(tmp_path, calls):
    config = tiny_study()
    run = verdict_runs(config, {("balance/flow-c1", "adamw"): 1e-3})[0]
    checkpoint(run.directory(tmp_path), 2)
    checkpoint(run.directory(tmp_path), 4)
    result = jobs.train_and_test(config, str(tmp_path), run, video=True)
    assert calls["train"] == []
    (test, _), (budget, _) = calls["evaluate"]
    assert (test.split, test.episodes, test.video) == ("test", 30, True)
    assert test.out == str(run.test_dir(tmp_path))
    # step 4 is the verdict's own evaluation; step 2 is the one earlier budget point
    assert (budget.split, budget.video) == ("test", False)
    assert budget.out == str(run.budget_dir(tmp_path, 2))
    assert budget.checkpoint == str(run.directory(tmp_path) / "checkpoints" / "step_0000002")
    assert result["job"] == "verdict balance/flow-c1/adamw-lr0.001-s1"


def test_a_test_without_its_videos_is_evaluated_again(tmp_path, calls):
    config = tiny_study()
    run = verdict_runs(config, {("balance/flow-c1", "adamw"): 1e-3})[0]
    checkpoint(run.directory(tmp_path), 4)
    out = run.test_dir(tmp_path)
    out.mkdir(parents=True)
    (out / "results.json").write_text("{}")  # killed after results.json, before the videos
    jobs.train_and_test(config, str(tmp_path), run, video=True)
    ((test, resume),) = [(c, r) for c, r in calls["evaluate"] if c.out == str(out)]
    assert test.video is True and resume is True
    (out / "videos").mkdir()
    for horizon in (10, 20):
        (out / "videos" / f"H{horizon:04d}.mp4").write_bytes(b"")
    calls["evaluate"].clear()
    jobs.train_and_test(config, str(tmp_path), run, video=True)
    assert [c.out for c, _ in calls["evaluate"]] == [str(run.budget_dir(tmp_path, 2))]


def test_a_run_that_diverges_is_recorded_and_not_evaluated(tmp_path, calls, monkeypatch):
    config = tiny_study()
    run = tuning_runs(config)[0]

    def diverging(train_config, policy_config, resume=False, progress=True):
        Path(train_config.out).mkdir(parents=True)  # as the trainer makes its run directory
        raise TrainingDiverged("loss is nan at step 3")

    monkeypatch.setattr(jobs, "train", diverging)
    result = jobs.train_and_validate(config, str(tmp_path), run)
    assert jobs.diverged(run.directory(tmp_path)) == {"message": "loss is nan at step 3"}
    assert calls["evaluate"] == [] and set(result["seconds"]) == {"train"}
    monkeypatch.setattr(jobs, "train", lambda *args, **kwargs: pytest.fail("trained again"))
    jobs.train_and_validate(config, str(tmp_path), run)  # a result, not retried
    assert calls["evaluate"] == []


def test_a_run_on_disk_with_other_settings_is_refused_naming_them(tmp_path, calls):
    config = tiny_study()
    run = tuning_runs(config)[0]
    train, policy = run_configs(config, tmp_path, run)
    saved = {"train": {**train.to_dict(), "lr": 0.5, "batch_size": 4}, "policy": policy.to_dict()}
    run.directory(tmp_path).mkdir(parents=True)
    (run.directory(tmp_path) / "config.json").write_text(json.dumps(saved))
    with pytest.raises(UserError, match=r"other train settings \(batch_size, lr\) than this study"):
        jobs.train_and_validate(config, str(tmp_path), run)
    assert calls == {"train": [], "evaluate": []}


def test_a_run_of_a_moved_study_is_the_same_run(tmp_path, calls):
    """Trained in another folder, moved here with its data: paths differ, nothing else does."""
    config = tiny_study()
    run = tuning_runs(config)[0]
    elsewhere = tmp_path / "before"
    train, policy = run_configs(config, elsewhere, run)
    here = tmp_path / "after"
    run.directory(here).mkdir(parents=True)
    (run.directory(here) / "config.json").write_text(
        json.dumps({"train": train.to_dict(), "policy": policy.to_dict()})
    )
    checkpoint(run.directory(here), 4)
    jobs.train_and_validate(config, str(here), run)
    assert calls["train"] == [] and len(calls["evaluate"]) == 1
