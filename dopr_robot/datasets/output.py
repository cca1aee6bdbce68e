"""Writing a converter's output: whole or not at all, and never over the input or unasked.

Every converter (robomimic, zarr, LeRobot in; LeRobot out) checks its output path with
`check_output`, then builds the output beside it and renames it into place with
`write_output_atomically`, so a failed or interrupted conversion leaves nothing half-written and
`overwrite=True` replaces the old output only once the new one is complete. A `.zarr.zip` target
is built as a directory and zipped at the end. `Progress` is the iterator wrapper a caller may
pass for a progress bar (`no_progress` by default).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import DataError
from .store import is_zip, zip_directory

Progress = Callable[[Iterator], Iterator]


def no_progress(iterable: Iterator) -> Iterator:
    return iterable


def check_output(source: Path, target: Path, overwrite: bool) -> None:
    if source.resolve() == target.resolve():
        raise DataError(f"input and output are the same path ({target})")
    if target.exists() and not overwrite:
        raise DataError(f"{target} already exists; pass --overwrite to replace it")


def write_output_atomically(target: Path, overwrite: bool, fill: Callable[[Path], None]) -> None:
    """`fill(directory)` builds the output in a temporary sibling of `target`, which is then
    moved into place (replacing an old `target` only at the end)."""
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
