"""A study meets a stop signal and a second study on its folder.

SIGTERM to `dopr-robot study` ends every worker process it started (none is left, even for a
moment, in the study's process group), says so in one sentence with exit 2, and the same command
afterwards finishes the study, leaving finished runs as they were. A second study on a folder a
live study holds is refused; a lock left by a study that died is taken over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dopr_robot.folder_lock import LOCK_NAME

from .conftest import group_members

#: the quick preset, smaller: two workers, enough steps that the signal lands mid-training
SMALL = """
name = "small"
policies = ["flow"]
tuning_seeds = 1
verdict_seeds = 2
budget = [1.0]
pairs = [["adamw", "dopr-adamw"]]
workers = 2
videos = false

[optimizers.adamw]
lr = [1e-3]

[optimizers.dopr-adamw]
lr = [1e-3]

[train]
steps = 400
batch_size = 64
warmup_steps = 20
val_every = 200
checkpoint_every = 200
log_every = 10

[policy]
mlp_width = 64
mlp_depth = 2
pred_horizon = 8
action_horizon = 4

[[tasks]]
name = "balance"
env_id = "dopr_robot/Balance-v0"
demos = 8
collect_horizon = 100
horizons = [20]
execute = 1
validation_episodes = 4
test_episodes = 4
"""


def _study(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dopr_robot.cli", "study", "--config", str(config),
            "--out", str(out), "--quiet", *extra]  # fmt: skip


def _group_members(group: int) -> list[int]:
    return [pid for pid, _ in group_members(group)]


def _describe(group: int) -> list[str]:
    return [command for _, command in group_members(group)]


def _gone_soon(group: int, seconds: float = 10) -> bool:
    """Whether the group empties within a few seconds (multiprocessing's resource tracker, for
    one, exits only once it sees the study's end of its pipe)."""
    deadline = time.monotonic() + seconds
    while _group_members(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _group_members(group)


def _training_started(out: Path) -> bool:
    return any(p.stat().st_size > 0 for p in out.glob("runs/**/metrics.jsonl"))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process groups from /proc")
def test_sigterm_to_a_study_leaves_no_child_and_the_rerun_resumes(tmp_path):
    config, out = tmp_path / "small.toml", tmp_path / "small"
    config.write_text(SMALL)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    study = subprocess.Popen(
        _study(config, out), env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while not _training_started(out) and study.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [pid for pid in _group_members(study.pid) if pid != study.pid]
    assert workers, "the study should be training in worker processes by now"
    study.send_signal(signal.SIGTERM)
    _, error = study.communicate(timeout=60)
    assert study.returncode == 2, error
    lines = error.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dopr-robot: stopped by SIGTERM; "), lines
    assert _gone_soon(study.pid), _describe(study.pid)  # every worker ended with the study
    assert not (out / LOCK_NAME).exists()  # released on the way out

    finished_before = sorted(out.glob("runs/**/checkpoints/step_*"))
    stamps = {p: p.stat().st_mtime_ns for p in finished_before}
    rerun = subprocess.run(_study(config, out), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "report.md").exists() and (out / "summary.json").exists()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in finished_before)  # not retrained


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process groups from /proc")
def test_sigterm_to_a_study_on_ray_ends_ray_and_its_tasks(tmp_path):
    """Without --address the study starts its own Ray instance: a stop signal ends the tasks,
    Ray's processes and the study itself with the study's sentence (Ray's driver would
    otherwise take SIGTERM itself, dump a stack and leave the sentence out)."""
    pytest.importorskip("ray")
    config, out = tmp_path / "long.toml", tmp_path / "long"
    config.write_text(SMALL.replace("steps = 400", "steps = 100000"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    study = subprocess.Popen(
        _study(config, out, "--backend", "ray"),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not _training_started(out) and study.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_group_members(study.pid)) > 2, "Ray and its workers should be running by now"
    study.send_signal(signal.SIGTERM)
    _, error = study.communicate(timeout=90)
    assert study.returncode == 2, error
    assert error.strip().splitlines()[-1].startswith("dopr-robot: stopped by SIGTERM; "), error
    assert _gone_soon(study.pid, seconds=30), _describe(study.pid)


HOLD = """
import sys, time
from dopr_robot.folder_lock import FolderLock
FolderLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_study_on_a_locked_folder_is_refused_and_a_stale_lock_is_taken_over(tmp_path):
    config, out = tmp_path / "small.toml", tmp_path / "small"
    config.write_text(SMALL)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    try:
        second = subprocess.run(_study(config, out), capture_output=True, text=True)
    finally:
        holder.send_signal(signal.SIGKILL)  # the first study dies without cleaning up
        holder.wait()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and f"being written by another dopr-robot process (pid {holder.pid}" in (lines[0])
    ), lines
    assert [p.name for p in out.iterdir()] == [LOCK_NAME]  # the refused study wrote nothing
    # the lock is stale now: the next study takes it over (collect-only keeps this test short)
    script = tmp_path / "train.sh"
    taken = subprocess.run(
        _study(config, out, "--export-train-commands", str(script)), capture_output=True, text=True
    )
    assert taken.returncode == 0, taken.stderr
    assert f"took over the lock on {out} left by pid {holder.pid}" in taken.stderr
    assert script.exists() and not (out / LOCK_NAME).exists()
