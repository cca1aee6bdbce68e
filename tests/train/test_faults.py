"""Faults a training run meets: a stop signal mid-run, and a disk that fills during a checkpoint.

The full-disk test mounts a small tmpfs in a user and mount namespace (`unshare`), where the
kernel allows one, so the checkpoint write meets a real ENOSPC. Where it does not, the resumed
process runs under a file-size limit (RLIMIT_FSIZE below the size of a checkpoint's weights, so
the same write fails with EFBIG), which the toolkit treats the same way.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dopr_robot.train import RunDir, latest_checkpoint, load_policy

FLAGS = ["--batch-size", "16", "--warmup-steps", "2", "--val-every", "1000", "--mlp-width",
         "32", "--mlp-depth", "1", "--pred-horizon", "8", "--action-horizon", "4"]  # fmt: skip


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dopr_robot.cli", "train", *args, "--quiet"]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _logged_steps(run: Path) -> int:
    metrics = run / "metrics.jsonl"
    return len(metrics.read_text().splitlines()) if metrics.exists() else 0


def test_sigterm_writes_a_last_checkpoint_and_the_resume_is_bitwise(store, tmp_path):
    run, steps = tmp_path / "stopped", 1500
    args = ["--data", str(store), "--steps", str(steps), "--checkpoint-every", "1000",
            "--log-every", "1", *FLAGS]  # fmt: skip
    process = subprocess.Popen(
        _command(*args, "--out", str(run)), env=_env(), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while _logged_steps(run) < 20 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 2, error
    lines = error.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dopr-robot: stopped by SIGTERM; a last "), lines
    stopped_at = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert 20 <= stopped_at < steps
    assert latest_checkpoint(run) == RunDir(run).checkpoint(stopped_at)  # written at that step
    assert f"at step {stopped_at} " in lines[0]

    resumed = subprocess.run(
        _command("--out", str(run), "--resume"), env=_env(), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    whole = tmp_path / "whole"  # the same command, never stopped
    subprocess.run(_command(*args, "--out", str(whole)), env=_env(), check=True)
    final = "checkpoints/step_0001500/model.safetensors"
    assert (run / final).read_bytes() == (whole / final).read_bytes()


DRIVER = """
import json, os, subprocess, sys
from pathlib import Path
run, room, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
first, second = sys.argv[4:5], sys.argv[5:]
env = {**os.environ, "OMP_NUM_THREADS": "1"}
cmd = [sys.executable, "-m", "dopr_robot.cli", "train", "--quiet"]
out = {"first": subprocess.run(cmd + json.loads(first[0]), env=env).returncode}
limit = None
if mode == "tmpfs":  # fill the device until `room` bytes are left
    filler = run.parent / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\\0" * 65536); f.flush()
        except OSError:
            pass
    os.truncate(filler, max(os.path.getsize(filler) - room, 0))
else:
    limit = room
def limited():
    import resource, signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if limit is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
resumed = subprocess.run(cmd + json.loads(second[0]), env=env, capture_output=True, text=True,
                         preexec_fn=limited)
out.update(code=resumed.returncode, stderr=resumed.stderr,
           listing=sorted(p.name for p in (run / "checkpoints").iterdir()))
print(json.dumps(out))
"""


def _unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(
        [
            unshare,
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt",
        ],  # fmt: skip
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.parametrize("mode", ["tmpfs", "rlimit"])
def test_a_full_disk_during_a_checkpoint_is_one_sentence_and_the_last_one_loads(
    store, tmp_path, mode
):
    common = ["--data", str(store), "--checkpoint-every", "3", "--log-every", "1", *FLAGS]
    disk = tmp_path / "disk"
    disk.mkdir()
    run = disk / "run"
    first = json.dumps([*common, "--out", str(run), "--steps", "6"])
    second = json.dumps(["--out", str(run), "--resume", "--steps", "12"])
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    if mode == "tmpfs":  # a real ENOSPC: room for metrics lines, not for a checkpoint
        if not _unshare_works():
            pytest.skip("this kernel lets no user namespace mount a tmpfs; the rlimit case runs")
        script = (
            f'mount -t tmpfs -o size=8m tmpfs "{disk}" && '
            f'"{sys.executable}" "{driver}" "{run}" 20000 tmpfs \'{first}\' \'{second}\' && '
            f'cp -r "{run}" "{tmp_path / "copy"}"'
        )
        argv = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script]
    else:  # EFBIG from a file-size limit below the weights' size
        argv = [sys.executable, str(driver), str(run), "20000", "rlimit", first, second]
    finished = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
    assert finished.returncode == 0, (mode, finished.stderr)
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    assert result["first"] == 0
    lines = result["stderr"].strip().splitlines()
    assert result["code"] == 2 and len(lines) == 1, (mode, result)
    assert "no room to write" in lines[0] and "step_0000009" in lines[0], lines
    assert "step_0000006, is intact; free space and rerun with --resume" in lines[0]
    assert result["listing"] == ["step_0000003", "step_0000006"]  # no partial directory left
    kept = (tmp_path / "copy") if mode == "tmpfs" else run
    policy = load_policy(kept / "checkpoints" / "step_0000006")
    assert all(torch.isfinite(p).all() for p in policy.parameters())
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY


HOLD = """
import sys, time
from dopr_robot.folder_lock import FolderLock
FolderLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_train_and_collect_resume_on_a_held_folder_are_refused(store, tmp_path, capsys):
    from dopr_robot.cli import main

    run = tmp_path / "run"
    flags = ["--checkpoint-every", "3", "--log-every", "1", *FLAGS]
    assert main(["train", "--data", str(store), "--out", str(run), "--steps", "3", *flags,
                 "--quiet"]) == 0  # fmt: skip
    for folder, command in [
        (run, ["train", "--out", str(run), "--resume", "--steps", "6", "--quiet"]),
        (store, ["collect", "--env", "dopr_robot/Balance-v0", "--task-horizon", "60",
                 "--episodes", "8", "--out", str(store), "--resume", "--quiet"]),
    ]:  # fmt: skip
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout.readline().strip() == "held"
            capsys.readouterr()
            assert main(command) == 2, command
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and f"pid {holder.pid}" in lines[0], lines
            assert "being written by another dopr-robot process" in lines[0]
        finally:
            holder.kill()
            holder.wait()
    assert latest_checkpoint(run) == run / "checkpoints" / "step_0000003"  # nothing new
