"""Toolkit side of `make interop`: a store with two cameras, exported to LeRobot, and the values
LeRobot must read back (saved as expected.npz beside it).

    python interop/make_store.py WORK_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dopr_robot.datasets import ReplayBuffer, write_lerobot

LENGTHS = (24, 17, 30)
SIDE = 96  # LeRobot's diffusion policy crops 84 x 84


def frames(n: int, seed: int) -> np.ndarray:
    """Smooth moving gradients: what a camera sees, and what H.264 keeps well."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    return np.stack([
        np.stack([xx * 2 + 3 * t + seed, yy * 2 + 2 * t, np.full_like(xx, 60 + seed)], -1)
        for t in range(n)
    ]).astype(np.int64).__mod__(256).astype(np.uint8)  # fmt: skip


def main(work: Path) -> None:
    rng = np.random.default_rng(0)
    store = work / "store.zarr"
    buffer = ReplayBuffer.create(store, attrs={"env_id": "gym_pusht/PushT-v0", "fps": 10.0})
    for i, n in enumerate(LENGTHS):
        action = rng.normal(size=(n, 2)).astype(np.float32)
        buffer.add_episode({
            "state": rng.normal(size=(n, 5)).astype(np.float32),
            "action": action,
            "action_executed": action + 0.1,
            "top": frames(n, 20 * i),
            "wrist": frames(n, 20 * i + 7),
        })  # fmt: skip
    data = buffer.load(["state", "action", "top", "wrist"])
    np.savez(work / "expected.npz", **data, episode_ends=buffer.episode_ends)
    export = write_lerobot(store, work / "export")
    print(f"exported {export.path} ({export.fps} fps, left out: {', '.join(export.left_out)})")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
