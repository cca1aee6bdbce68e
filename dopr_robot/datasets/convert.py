"""Converters into the toolkit's store: robomimic HDF5 → zarr, and zarr (format 2/3) → zarr.

Both write to a temporary sibling of the output and rename it into place at the end
(`output.py`), so a failed or interrupted conversion leaves nothing half-written, and
`overwrite=True` replaces the old output only once the new one is complete. The input is only
ever opened read-only.

robomimic: `data/demo_<i>` groups taken in integer order of <i> (demo_10 after demo_9), actions →
`action` (`action_key="actions_abs"` takes robomimic 0.5's absolute actions instead), chosen
`obs/<key>` datasets → `<key>`. `data.attrs["env_args"]` (env name, version, kwargs with the
controller config) is kept in the store's attributes: it is what rebuilds the evaluation env. The
attributes also record `source_format` and `key_mapping` (store key → source dataset). The
file's `mask/<name>` filters are honoured: `filter_key="train"` converts only the demos listed
there, and every filter is recorded in the store's attributes as episode indices
(`attrs["masks"]`), e.g. for a train/valid split.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import DataError
from .output import Progress, check_output, no_progress, write_output_atomically
from .replay_buffer import ReplayBuffer


def convert_zarr(
    source,
    target,
    *,
    zarr_format: int = 3,
    overwrite: bool = False,
    progress: Progress = no_progress,
) -> Path:
    """Copy a replay-buffer store (format 2 or 3, directory or zip) into a new store."""
    source, target = Path(source), Path(target)
    check_output(source, target, overwrite)
    buffer = ReplayBuffer.open(source)
    attrs = {
        **buffer.attrs,
        "converted_from": str(source),
        "created_by": f"dopr-robot {__version__}",
    }

    def fill(directory: Path) -> None:
        out = ReplayBuffer.create(directory, zarr_format=zarr_format, attrs=attrs)
        for index in progress(range(buffer.n_episodes)):
            out.add_episode(buffer.get_episode(index))

    write_output_atomically(target, overwrite, fill)
    return target


def _demo_number(name: str) -> int:
    match = re.fullmatch(r"demo_(\d+)", name)
    return int(match.group(1)) if match else -1


def convert_robomimic(
    source,
    target,
    *,
    obs_keys: list[str] | None = None,
    filter_key: str | None = None,
    action_key: str = "actions",
    zarr_format: int = 3,
    overwrite: bool = False,
    progress: Progress = no_progress,
) -> Path:
    """robomimic HDF5 → replay-buffer store. `obs_keys` default: every low-dim obs key;
    `action_key`: the demo dataset stored as `action` (e.g. "actions_abs")."""
    source, target = Path(source), Path(target)
    if not source.exists():
        raise DataError(f"{source} does not exist")
    check_output(source, target, overwrite)
    try:
        file = h5py.File(source, "r")
    except OSError as error:
        raise DataError(f"{source} is not a readable HDF5 file ({error})") from None
    with file:
        demos, masks = _chosen_demos(file, source, filter_key)
        first = file["data"][demos[0]]
        obs_keys = _chosen_obs_keys(first, source, obs_keys)
        if action_key not in first:
            actions = sorted(k for k in first if k.startswith("action"))
            raise DataError(
                f"{source} has no data/{demos[0]}/{action_key} for the action "
                f"(action datasets: {', '.join(actions) or 'none'})"
            )
        attrs = {
            "source": str(source),
            "source_format": "robomimic",
            "env_args": _env_args(file),
            "obs_keys": obs_keys,
            "action_key": action_key,
            "key_mapping": {"action": action_key, **{key: f"obs/{key}" for key in obs_keys}},
            "filter": filter_key,
            "demos": demos,
            "masks": {
                n: [demos.index(d) for d in names if d in demos] for n, names in masks.items()
            },
            "created_by": f"dopr-robot {__version__}",
        }

        def fill(directory: Path) -> None:
            out = ReplayBuffer.create(directory, zarr_format=zarr_format, attrs=attrs)
            for name in progress(demos):
                out.add_episode(_demo_episode(file, source, name, action_key, obs_keys))

        write_output_atomically(target, overwrite, fill)
    return target


def _chosen_demos(
    file: h5py.File, source: Path, filter_key: str | None
) -> tuple[list[str], dict[str, list[str]]]:
    """The `data/demo_<i>` names in integer order (only those of mask `filter_key` if given),
    and the file's masks."""
    if "data" not in file:
        raise DataError(f"{source} has no 'data' group (not a robomimic dataset)")
    demos = sorted((k for k in file["data"] if _demo_number(k) >= 0), key=_demo_number)
    if not demos:
        raise DataError(f"{source} has no data/demo_<i> groups")
    masks = _masks(file, source)
    if filter_key is None:
        return demos, masks
    if filter_key not in masks:
        raise DataError(
            f"{source} has no mask/{filter_key} (filters: {', '.join(masks) or 'none'})"
        )
    chosen = set(masks[filter_key])
    return [d for d in demos if d in chosen], masks


def _chosen_obs_keys(first: h5py.Group, source: Path, obs_keys: list[str] | None) -> list[str]:
    """The obs keys asked for, checked against the first demo's; by default its low-dim ones
    (images are opted into by name)."""
    available = sorted(first["obs"]) if "obs" in first else []
    if obs_keys is None:
        return [k for k in available if first["obs"][k].ndim <= 2]
    for key in obs_keys:
        if key not in available:
            raise DataError(f"{source} has no obs key {key!r} (available: {', '.join(available)})")
    return obs_keys


def _demo_episode(
    file: h5py.File, source: Path, name: str, action_key: str, obs_keys: list[str]
) -> dict[str, np.ndarray]:
    demo = file["data"][name]
    try:
        episode = {"action": demo[action_key][()]}
        episode.update({key: demo["obs"][key][()] for key in obs_keys})
    except (KeyError, OSError) as error:
        raise DataError(f"{source}: data/{name} cannot be read ({error})") from None
    return episode


def _masks(file: h5py.File, source: Path) -> dict[str, list[str]]:
    if "mask" not in file:
        return {}
    masks = {}
    for name, dataset in file["mask"].items():
        values = dataset[()]
        if not isinstance(values, np.ndarray) or values.dtype.kind not in "SUO":
            raise DataError(f"{source}: mask/{name} is not a list of demo names")
        masks[name] = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    return masks


def _env_args(file: h5py.File):
    raw = file["data"].attrs.get("env_args")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return str(raw)
