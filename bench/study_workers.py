"""Is the study faster with two worker processes than with one? Measured side by side.

The default preset, cut to one training seed (36 runs, same tasks, grid and steps), is run twice
from scratch into temporary directories: `workers = 1` (everything in this process, torch with
all cores) and `workers = 2` (two spawned processes, one thread each). Prints wall times and the
ratio; the README's claim that two single-threaded workers win rests on this.

    python bench/study_workers.py [--seeds 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from dopr_robot.study.config import load_study, preset_path
from dopr_robot.study.runner import run_study


def timed(workers: int, seeds: int) -> tuple[float, int]:
    config = load_study(preset_path("default"))
    config.seeds, config.workers, config.videos = seeds, workers, False
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        summary = run_study(config, Path(directory) / "study", progress=False)
        return time.perf_counter() - started, len(summary["runs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores; default preset, {args.seeds} seed(s)"
    )
    times = {}
    for workers in (1, 2):
        times[workers], runs = timed(workers, args.seeds)
        print(f"  workers {workers}: {runs} runs in {times[workers]:7.1f} s")
    print(f"  ratio workers 1 / workers 2: {times[1] / times[2]:.2f}")


if __name__ == "__main__":
    main()
