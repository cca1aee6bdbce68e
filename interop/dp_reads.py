"""diffusion_policy side of `make interop` (runs in a venv with diffusion_policy's pins: Python
3.9, zarr 2.12, numcodecs 0.10, numpy 1.23): a store from `dopr-robot collect` opens the way
diffusion_policy's `ReplayBuffer` opens it, and holds what the toolkit reads.

    python interop/dp_reads.py STORE EXPECTED.npz [DP_REPLAY_BUFFER_PY]

With the path of diffusion_policy's own `common/replay_buffer.py`, its `ReplayBuffer` does the
reading (`create_from_path` and `copy_from_path`); without it, zarr 2 opens the same layout
(root group, `data/<key>`, `meta/episode_ends`) directly.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import zarr


def fail(what: str) -> None:
    print(f"toolkit -> diffusion_policy: FAILS: {what}")
    sys.exit(1)


def dp_replay_buffer(path: str):
    spec = importlib.util.spec_from_file_location("dp_replay_buffer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ReplayBuffer


def read_with_dp(store: str, source: str) -> dict:
    ReplayBuffer = dp_replay_buffer(source)
    opened = ReplayBuffer.create_from_path(store, mode="r")
    copied = ReplayBuffer.copy_from_path(store, store=zarr.MemoryStore())
    if opened.n_episodes != copied.n_episodes:
        fail("create_from_path and copy_from_path disagree")
    out = {key: copied[key][:] for key in copied.keys()}
    out["episode_ends"] = copied.episode_ends[:]
    return out


def read_with_zarr(store: str) -> dict:
    root = zarr.open(store, mode="r")
    out = {key: root["data"][key][:] for key in root["data"].array_keys()}
    out["episode_ends"] = root["meta"]["episode_ends"][:]
    return out


def main() -> None:
    store, expected_path = sys.argv[1], sys.argv[2]
    source = sys.argv[3] if len(sys.argv) > 3 else None
    try:
        got = read_with_dp(store, source) if source else read_with_zarr(store)
    except Exception as error:  # report what zarr 2 says, whatever it is
        fail(f"{type(error).__name__}: {error}")
    expected = np.load(expected_path)
    if sorted(got) != sorted(expected.files):
        fail(f"keys {sorted(got)} != {sorted(expected.files)}")
    for key in expected.files:
        if not np.array_equal(got[key], expected[key]):
            fail(f"{key} differs")
    how = "diffusion_policy's own ReplayBuffer" if source else "zarr 2 (no diffusion_policy source)"
    print(
        f"toolkit -> diffusion_policy: works ({how} with zarr {zarr.__version__} reads "
        f"{len(got['episode_ends'])} episodes, keys {', '.join(sorted(got))}, exactly)"
    )


if __name__ == "__main__":
    main()
