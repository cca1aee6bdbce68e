"""Is the study faster with two worker processes than with one? Measured side by side.

The default preset, cut to one tuning seed and two verdict seeds with one budget point (same
tasks, grid and steps), is run twice
from scratch into temporary directories: `workers = 1` (everything in this process, torch with
all cores) and `workers = 2` (two spawned processes, one thread each). Prints wall times and the
ratio; the README's claim that two single-threaded workers win rests on this.

    python bench/study_workers.py [--verdict-seeds 2]
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
    config.tuning_seeds, config.verdict_seeds, config.budget = 1, seeds, [1.0]
    config.workers, config.videos = workers, False
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        summary = run_study(config, Path(directory) / "study", progress=False)
        return time.perf_counter() - started, len(summary.runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verdict-seeds", type=int, default=2)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores; default preset, 1 tuning seed, "
        f"{args.verdict_seeds} verdict seeds"
    )
    times = {}
    for workers in (1, 2):
        times[workers], runs = timed(workers, args.verdict_seeds)
        print(f"  workers {workers}: {runs} runs in {times[workers]:7.1f} s")
    print(f"  ratio workers 1 / workers 2: {times[1] / times[2]:.2f}")


if __name__ == "__main__":
    main()
