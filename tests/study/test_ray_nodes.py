"""Node loss on a real two-node Ray cluster: a head and a second node on this machine (two
raylets), the quick study joined with --address, the second node's raylet killed mid-study.

The study must finish with the local pool's per-run numbers (Ray reruns the lost jobs on the
head, and each rerun resumes from what its run had on disk), and no Ray process may be left
afterwards. The cluster uses its own auth token and temp dir, so it touches nothing else.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import group_members, per_run_numbers

pytest.importorskip("ray")  # the `cluster` extra
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """`ray start` twice, each in its own session (so each node's processes share a group)."""

    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: socket paths
        token = tmp / "ray_token"
        token.write_text(secrets.token_hex(32))
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                    "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}  # fmt: skip
        self.groups: list[int] = []

    def start(self, *args: str) -> int:
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
                  "--object-store-memory=150000000"]  # fmt: skip
        starter = subprocess.Popen(
            [str(RAY), "start", *args, *common], env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _, error = starter.communicate(timeout=120)
        self.groups.append(starter.pid)
        assert starter.returncode == 0, error
        return starter.pid

    def raylet(self, group: int) -> int:
        (pid,) = [pid for pid, command in group_members(group) if "raylet/raylet " in command]
        return pid

    def stop(self) -> list[tuple[int, str]]:
        """`ray stop`, then anything still in the nodes' groups is killed and returned."""
        subprocess.run([str(RAY), "stop", "--force"], env=self.env, capture_output=True)
        deadline = time.monotonic() + 20
        left = [m for g in self.groups for m in group_members(g)]
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = [m for g in self.groups for m in group_members(g)]
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp, ignore_errors=True)
        return left


def _trainings_started(root: Path, count: int) -> bool:
    return sum(p.stat().st_size > 0 for p in root.glob("runs/**/metrics.jsonl")) >= count


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process groups from /proc")
def test_losing_a_node_mid_study_gives_the_local_pools_numbers(study, tmp_path):
    cluster = Cluster(tmp_path)
    root = tmp_path / "quick-two-nodes"
    try:
        cluster.start("--head", f"--port={cluster.port}", f"--temp-dir={cluster.temp}",
                      "--include-dashboard=false")  # fmt: skip
        second = cluster.start(f"--address=127.0.0.1:{cluster.port}")
        victim = cluster.raylet(second)
        command = [sys.executable, "-m", "dopr_robot.cli", "study", "--preset", "quick",
                   "--out", str(root), "--backend", "ray", "--address",
                   f"127.0.0.1:{cluster.port}", "--quiet"]  # fmt: skip
        driver = subprocess.Popen(command, env=cluster.env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while not _trainings_started(root, 2) and driver.poll() is None:
            assert time.monotonic() < deadline, "no two trainings started"
            time.sleep(0.2)
        os.kill(victim, signal.SIGKILL)  # the second node is gone, mid-training
        _, error = driver.communicate(timeout=900)
        assert driver.returncode == 0, error
    finally:
        left = cluster.stop()
    assert left == [], f"Ray processes left after ray stop: {left}"
    assert per_run_numbers(root) == per_run_numbers(study)
