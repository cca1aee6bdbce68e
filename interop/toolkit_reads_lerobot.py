"""Toolkit side of `make interop`: the store converted from LeRobot's own dataset holds what
LeRobot's own reader decodes (state and action exactly, frames bit for bit).

    python interop/toolkit_reads_lerobot.py WORK_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dopr_robot.datasets import ReplayBuffer


def main(work: Path) -> None:
    expected = np.load(work / "lerobot_decoded.npz")
    store = ReplayBuffer.open(work / "from_lerobot.zarr")
    got = store.load(["state", "action", "images_cam"])
    problems = []
    if list(store.episode_lengths) != expected["lengths"].tolist():
        problems.append(f"episode lengths {list(store.episode_lengths)}")
    for key in ("state", "action"):
        if not np.array_equal(got[key], expected[key]):
            problems.append(f"{key} differs")
    frames = np.abs(got["images_cam"].astype(int) - expected["images_cam"].astype(int)).max()
    if frames > 1:
        problems.append(f"frames differ by up to {frames} grey levels")
    if problems:
        print(f"LeRobot -> toolkit: FAILS: {'; '.join(problems)}")
        sys.exit(1)
    exact = "bit-identical" if frames == 0 else "within 1 grey level (rounding)"
    print(
        f"LeRobot -> toolkit: works ({store.n_episodes} episodes from LeRobot's writer; state "
        f"and action exact, frames {exact} to LeRobot's own decode)"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
