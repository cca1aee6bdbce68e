"""Full validation of a demonstration store: one sentence per problem, nothing written.

`ReplayBuffer.open` already refuses what makes a store unusable at all (not a zarr store, no
`data/` or `meta/episode_ends`, object or string dtypes). `validate_store(buffer)` checks the
values: episode ends that do not increase or run past the data, arrays shorter than the
committed steps, NaN/Inf, an empty store. Rows past the last committed end (an interrupted
append) are not a problem: they are reported by `dopr-robot data info` and overwritten by the
next append.
"""

from __future__ import annotations

import numpy as np

from .replay_buffer import ReplayBuffer

SCAN_ROWS = 65536  # rows read at a time when scanning for NaN/Inf


def validate_store(buffer: ReplayBuffer) -> list[str]:
    """Every problem found, each one sentence naming the store and the array; [] when valid."""
    found = []
    ends = buffer.episode_ends
    if len(ends) == 0:
        found.append(f"{buffer.path} holds no episodes")
    steps = np.diff(ends, prepend=0)
    if len(ends) and (steps <= 0).any():
        first = int(np.flatnonzero(steps <= 0)[0])
        found.append(
            f"{buffer.path}: meta/episode_ends is not strictly increasing at episode {first} "
            f"(end {int(ends[first])} after {int(ends[first - 1]) if first else 0})"
        )
    arrays = buffer._arrays()
    if not arrays:
        found.append(f"{buffer.path} has no arrays under data/")
    end = int(ends[-1]) if len(ends) else 0
    for key, array in sorted(arrays.items()):
        short = buffer.short_array(key, array, end)
        if short:
            found.append(short)
            continue
        try:
            bad = _first_non_finite(array, end)
        except Exception as error:  # a truncated or corrupt chunk, as the codec reports it
            found.append(f"{buffer.path}: data/{key} cannot be read ({error})")
            continue
        if bad is not None:
            found.append(f"{buffer.path}: data/{key} holds NaN or Inf (first at step {bad})")
    return found


def _first_non_finite(array, end: int) -> int | None:
    """Read every committed row (so a corrupt chunk shows) and find the first non-finite one."""
    for start in range(0, end, SCAN_ROWS):
        block = np.asarray(array[start : min(end, start + SCAN_ROWS)])
        if block.dtype.kind not in "fc":
            continue
        finite = np.isfinite(block.reshape(block.shape[0], -1)).all(axis=1)
        if not finite.all():
            return start + int(np.flatnonzero(~finite)[0])
    return None
