"""Toolkit side of `make interop`: a store's arrays as the toolkit reads them, into an .npz that
another Python (diffusion_policy's zarr 2.12 venv) compares against.

    python interop/dump_store.py STORE OUT.npz
"""

from __future__ import annotations

import sys

import numpy as np

from dopr_robot.datasets import ReplayBuffer

if __name__ == "__main__":
    buffer = ReplayBuffer.open(sys.argv[1])
    np.savez(sys.argv[2], **buffer.load(list(buffer.keys)), episode_ends=buffer.episode_ends)
    print(f"{sys.argv[1]}: zarr format {buffer.zarr_format}, {buffer.n_episodes} episodes")
