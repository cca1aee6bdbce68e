"""The folder lock: one live writer per folder, a crashed writer's lock taken over, no trace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from dopr_robot.folder_lock import LOCK_NAME, FolderBusy, FolderLock, has_content

HOLD = """
import sys, time
from dopr_robot.folder_lock import FolderLock
FolderLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def _holder(folder):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_live_holder_refuses_others_and_a_dead_ones_lock_is_taken_over(tmp_path, capsys):
    folder = tmp_path / "run"
    holder = _holder(folder)
    try:
        with pytest.raises(FolderBusy, match=rf"being written by .*pid {holder.pid} on "):
            FolderLock(folder).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: no chance to clean up
        holder.wait()
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == holder.pid  # left behind
    with FolderLock(folder) as lock:
        assert lock.taken_over["pid"] == holder.pid
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
        assert not has_content(folder)  # a lock alone is not content
    assert f"left by pid {holder.pid}" in capsys.readouterr().err
    assert folder.exists() and not (folder / LOCK_NAME).exists()


def test_a_lock_that_created_its_folder_removes_it_when_nothing_was_written(tmp_path):
    with FolderLock(tmp_path / "new"):
        assert (tmp_path / "new" / LOCK_NAME).exists()
    assert not (tmp_path / "new").exists()
    with FolderLock(tmp_path / "kept"):
        (tmp_path / "kept" / "result.txt").write_text("finished")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["result.txt"]


def test_one_process_cannot_take_the_same_folder_twice(tmp_path):
    with FolderLock(tmp_path / "x"):
        with pytest.raises(FolderBusy, match=f"pid {os.getpid()}"):
            FolderLock(tmp_path / "x").acquire()
