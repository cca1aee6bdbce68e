"""Opening and creating zarr stores: directory or `.zarr.zip`, zarr format 2 or 3.

Every failure a user can cause — a path that does not exist, a file that is not a zarr store, a
truncated zip — becomes one `DataError` sentence naming the path. diffusion_policy's robomimic
image stores compress images with JPEG 2000 (`imagecodecs_jpeg2k`): when the `imagecodecs`
package is installed (extra `formats`), its numcodecs codecs are registered before a store is
opened, so those arrays read like any other. Zip stores are opened read-only:
appending to a zip would leave duplicate entries, so they are written once, whole (`zip_directory`).
"""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path

import zarr
import zarr.storage

from ..errors import DataError

ZARR_FORMATS = (2, 3)


def is_zip(path: Path) -> bool:
    return path.suffix == ".zip"


@functools.cache
def register_image_codecs() -> bool:
    """Register imagecodecs' numcodecs codecs (JPEG 2000, ...) once; False if not installed."""
    try:
        from imagecodecs.numcodecs import register_codecs
    except ImportError:
        return False
    register_codecs()
    return True


def open_root(path: str | os.PathLike, mode: str = "r") -> zarr.Group:
    """The root group of an existing store; `mode` "r" (read-only) or "a" (append)."""
    register_image_codecs()
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if is_zip(path):
        if mode != "r":
            raise DataError(
                f"{path} is a zip store, which is read-only here; convert it to a directory "
                "store first (dopr-robot data convert)"
            )
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path} is not a readable zip file (truncated or not a zip)")
        try:
            store = zarr.storage.ZipStore(path, mode="r")
        except (OSError, zipfile.BadZipFile) as error:
            raise DataError(f"{path} is not a readable zip store ({error})") from None
    elif path.is_dir():
        store = zarr.storage.LocalStore(path, read_only=mode == "r")
    else:
        raise DataError(f"{path} is not a zarr store (expected a directory or a .zarr.zip file)")
    try:
        return zarr.open_group(store, mode=mode)
    except Exception as error:  # zarr raises several types for a missing or broken root
        raise DataError(f"{path} is not a zarr store ({type(error).__name__}: {error})") from None


def create_root(path: str | os.PathLike, zarr_format: int = 3) -> zarr.Group:
    """A new, empty directory store (the caller has checked that `path` may be written)."""
    if zarr_format not in ZARR_FORMATS:
        raise DataError(f"zarr format {zarr_format} is not supported (expected 2 or 3)")
    path = Path(path)
    if is_zip(path):
        raise DataError(f"{path}: zip stores are written whole, not created empty")
    return zarr.open_group(zarr.storage.LocalStore(path), mode="w-", zarr_format=zarr_format)


def zip_directory(directory: Path, target: Path) -> None:
    """Pack a directory store into a `.zarr.zip` (stored, not deflated: zarr chunks are already
    compressed, and this is how zarr's own ZipStore writes them)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for file in sorted(directory.rglob("*")):
            if file.is_file() and not file.name.endswith(".partial"):
                archive.write(file, file.relative_to(directory).as_posix())
