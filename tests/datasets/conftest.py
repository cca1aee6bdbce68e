"""Small stores and argv shared by the dataset tests: plain functions the tests import
(`from .conftest import make_store`)."""

from __future__ import annotations

import numpy as np

from dopr_robot.datasets import ReplayBuffer


def episode(index: int, length: int, action_dim: int = 2, state_dim: int = 3) -> dict:
    """Rows whose values encode (episode, step), so any mix-up shows in the numbers."""
    steps = np.arange(length, dtype=np.float32)[:, None]
    return {
        "action": index * 1000 + steps + np.zeros((1, action_dim), np.float32),
        "state": -(index * 1000 + steps) + np.zeros((1, state_dim), np.float32),
    }


def make_store(path, lengths=(5, 7, 4), zarr_format=3, **attrs) -> ReplayBuffer:
    buffer = ReplayBuffer.create(path, zarr_format=zarr_format, attrs=attrs or None)
    for i, length in enumerate(lengths):
        buffer.add_episode(episode(i, length))
    return buffer


def train_two_steps(data, out, obs_keys: str, pred_horizon=8, action_horizon=4, *extra) -> list:
    """`dopr-robot train` argv for a tiny two-step run (small MLP, small image features): what
    the format tests use to show a converted store trains."""
    return ["train", "--data", str(data), "--out", str(out), "--obs-keys", obs_keys,
            "--steps", "2", "--batch-size", "4", "--pred-horizon", str(pred_horizon),
            "--action-horizon", str(action_horizon), "--mlp-width", "16",
            "--image-feature-dim", "8", "--val-every", "2", "--checkpoint-every", "2",
            "--quiet", *extra]  # fmt: skip


#: episode lengths of `camera_store` (the 3-step episode is shorter than the policy's horizon)
CAMERA_LENGTHS = (7, 3, 12)


def smooth_frames(n: int, seed: int, height: int = 32, width: int = 48) -> np.ndarray:
    """Gradients that move over time: what a camera sees, and what H.264 keeps well."""
    yy, xx = np.mgrid[0:height, 0:width]
    frames = [
        np.stack([xx * 4 + 3 * t + seed, yy * 5 + 2 * t, np.full_like(xx, 60 + 10 * seed)], -1)
        for t in range(n)
    ]
    return (np.stack(frames) % 256).astype(np.uint8)


def camera_store(path) -> ReplayBuffer:
    """A store with state, action and two cameras ("top", "wrist") of `CAMERA_LENGTHS` episodes:
    what the LeRobot tests write and read back."""
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer.create(path, attrs={"env_id": "dopr_robot/ReachChain-v0", "fps": 20})
    for i, n in enumerate(CAMERA_LENGTHS):
        buffer.add_episode(
            {
                "state": rng.normal(size=(n, 4)).astype(np.float32),
                "action": rng.normal(size=(n, 2)).astype(np.float32),
                "top": smooth_frames(n, 10 * i),
                "wrist": smooth_frames(n, 10 * i + 5),
            }
        )
    return buffer
