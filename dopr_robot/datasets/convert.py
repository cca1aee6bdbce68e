"""Converters into the toolkit's store: robomimic HDF5 → zarr, and zarr (format 2/3) → zarr.

Both write to a temporary sibling of the output and rename it into place at the end, so a failed
or interrupted conversion leaves nothing half-written, and `overwrite=True` replaces the old
output only once the new one is complete. The input is only ever opened read-only.

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
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import DataError
from .replay_buffer import ReplayBuffer
from .store import is_zip, zip_directory

Progress = Callable[[Iterator], Iterator]


def _identity(iterable: Iterator) -> Iterator:
    return iterable


def check_output(source: Path, target: Path, overwrite: bool) -> None:
    if source.resolve() == target.resolve():
        raise DataError(f"input and output are the same path ({target})")
    if target.exists() and not overwrite:
        raise DataError(f"{target} already exists; pass --overwrite to replace it")


def _write_atomically(target: Path, overwrite: bool, fill: Callable[[Path], None]) -> None:
    """Build the output beside `target`, then move it into place (replacing only at the end)."""
    work = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    directory = work.with_suffix(".dir") if is_zip(target) else work
    try:
        fill(directory)
        if is_zip(target):
            zip_directory(directory, work)
            shutil.rmtree(directory)
        if target.exists() and overwrite:
            _remove(target)
        os.replace(work, target)
    finally:
        for leftover in (work, directory):
            if leftover.exists():
                _remove(leftover)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def convert_zarr(
    source, target, *, zarr_format: int = 3, overwrite: bool = False, progress: Progress = _identity
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

    _write_atomically(target, overwrite, fill)
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
    progress: Progress = _identity,
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
        if "data" not in file:
            raise DataError(f"{source} has no 'data' group (not a robomimic dataset)")
        demos = sorted((k for k in file["data"] if _demo_number(k) >= 0), key=_demo_number)
        if not demos:
            raise DataError(f"{source} has no data/demo_<i> groups")
        masks = _masks(file, source)
        if filter_key is not None:
            if filter_key not in masks:
                raise DataError(
                    f"{source} has no mask/{filter_key} (filters: {', '.join(masks) or 'none'})"
                )
            chosen = set(masks[filter_key])
            demos = [d for d in demos if d in chosen]
        first = file["data"][demos[0]]
        available = sorted(first["obs"]) if "obs" in first else []
        if obs_keys is None:  # low-dim keys only: images are opted into by name
            obs_keys = [k for k in available if first["obs"][k].ndim <= 2]
        for key in obs_keys:
            if key not in available:
                raise DataError(
                    f"{source} has no obs key {key!r} (available: {', '.join(available)})"
                )
        actions = sorted(k for k in first if k.startswith("action"))
        if action_key not in first:
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
                demo = file["data"][name]
                try:
                    episode = {"action": demo[action_key][()]}
                    episode.update({key: demo["obs"][key][()] for key in obs_keys})
                except (KeyError, OSError) as error:
                    raise DataError(f"{source}: data/{name} cannot be read ({error})") from None
                out.add_episode(episode)

        _write_atomically(target, overwrite, fill)
    return target


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
