"""Small stores and files shared by the dataset tests."""

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
