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
