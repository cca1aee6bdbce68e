"""`ReplayBuffer`: demonstrations in diffusion_policy's zarr layout.

    <root>/data/<key>          one array per field, every episode concatenated on axis 0
    <root>/meta/episode_ends   int64, cumulative exclusive end of each episode
    <root>.attrs               provenance: env_id, task_horizon, expert, seed, created_by, ...

Zarr format 3 by default; format 2 stores (what diffusion_policy writes) are read, and appended
to, in format 2. Arrays are chunked along time only, ~2 MB per chunk, Blosc lz4.

Crash safety. `add_episode` first writes the episode's rows past the committed end of every data
array, and only then appends to `meta/episode_ends`; each zarr file write is atomic (write to a
temporary file, rename). So a process killed mid-append leaves, at worst, rows past the last
committed end (ignored, and overwritten by the next append) or a last `episode_ends` entry that
still holds the fill value (not increasing: recognised as uncommitted and ignored). Every
completed episode survives.
"""

from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path

import numpy as np
import zarr
import zarr.errors
from numcodecs import Blosc
from numcodecs.errors import UnknownCodecError as NumcodecsUnknownCodec

from .. import __version__
from ..errors import DataError
from .store import create_root, open_root

CHUNK_BYTES = 2 * 1024 * 1024
#: store attribute: every chunk was written, fill-value-only ones included
ALL_CHUNKS = "all_chunks_written"
# numcodecs raises its own error for a codec it does not know; zarr >= 3.2 raises zarr's own
# UnknownCodecError first (it is not a subclass of numcodecs'), so both are caught
UNKNOWN_CODEC = (
    NumcodecsUnknownCodec,
    getattr(zarr.errors, "UnknownCodecError", NumcodecsUnknownCodec),
)
NUMERIC_KINDS = "biuf"  # bool, int, uint, float; object/string/void arrays are never loaded


def _chunk_length(step_shape: tuple[int, ...], dtype: np.dtype) -> int:
    step_bytes = max(1, int(np.prod(step_shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return max(1, CHUNK_BYTES // step_bytes)


class ReplayBuffer:
    """A demonstration store on disk. Open with `ReplayBuffer.open`, make with `.create`."""

    def __init__(self, root: zarr.Group, path: Path, writable: bool) -> None:
        self.root = root
        self.path = path
        self.writable = writable
        self._complete: set[str] = set()  # arrays whose chunk files were all found
        self._check_layout()

    # ---- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> ReplayBuffer:
        """Open an existing store ("r" read-only, "a" to append); checks the layout, not the
        values (see `datasets.validate` for a full check)."""
        if mode not in ("r", "a"):
            raise ValueError(f"invalid mode: {mode!r} (expected 'r' or 'a')")
        buffer = cls(open_root(path, mode), Path(path), writable=mode == "a")
        if buffer.writable:
            buffer._sweep_partial_files()
        return buffer

    @classmethod
    def create(
        cls, path: str | os.PathLike, *, zarr_format: int = 3, attrs: dict | None = None
    ) -> ReplayBuffer:
        """A new, empty store at `path`, which must not exist; `attrs` record provenance (env_id,
        task_horizon, expert, seed, ...), and `created_by` is added unless given."""
        path = Path(path)
        if path.exists():
            raise DataError(f"{path} already exists; choose another path or remove it first")
        root = create_root(path, zarr_format)
        root.create_group("data")
        meta = root.create_group("meta")
        meta.create_array("episode_ends", shape=(0,), chunks=(4096,), dtype="int64", fill_value=0)
        root.attrs.update(
            {"created_by": f"dopr-robot {__version__}", ALL_CHUNKS: True, **(attrs or {})}
        )
        return cls(root, path, writable=True)

    def _check_layout(self) -> None:
        for name in ("data", "meta"):
            if not isinstance(self.root.get(name), zarr.Group):
                raise DataError(f"{self.path} has no '{name}/' group (not a replay buffer store)")
        ends = self.root["meta"].get("episode_ends")
        if not isinstance(ends, zarr.Array):
            raise DataError(f"{self.path} has no 'meta/episode_ends' array")
        if ends.ndim != 1 or ends.dtype.kind not in "iu":
            raise DataError(
                f"{self.path}: meta/episode_ends must be a 1-D integer array, "
                f"got shape {ends.shape} and dtype {ends.dtype}"
            )
        for key, array in self._arrays().items():
            if array.dtype.kind not in NUMERIC_KINDS:
                raise DataError(
                    f"{self.path}: data/{key} has dtype {array.dtype}, which is refused "
                    "(only numeric arrays are loaded; nothing is ever unpickled)"
                )
            if array.ndim == 0:
                raise DataError(f"{self.path}: data/{key} is a scalar, expected one row per step")

    def _arrays(self) -> dict[str, zarr.Array]:
        try:
            with warnings.catch_warnings():  # a dead writer's temp file is not a member
                warnings.filterwarnings("ignore", message=".*partial is not recognized")
                members = self.root["data"].members()
        except UNKNOWN_CODEC as error:  # e.g. diffusion_policy's JPEG 2000 image arrays
            raise DataError(
                f"{self.path}: an array under data/ is compressed with a codec that is not "
                f"available ({error}); diffusion_policy's image stores use imagecodecs' codecs: "
                "pip install 'dopr-robot[formats]'"
            ) from None
        except Exception as error:  # zarr refuses e.g. a pickled-object array's metadata
            raise DataError(
                f"{self.path}: an array under data/ cannot be opened safely ({error}); only "
                "numeric arrays are loaded and nothing is ever unpickled"
            ) from None
        return {k: v for k, v in members if isinstance(v, zarr.Array)}

    # ---- reading --------------------------------------------------------------------------
    @property
    def zarr_format(self) -> int:
        return self.root.metadata.zarr_format

    @property
    def attrs(self) -> dict:
        return dict(self.root.attrs)

    @property
    def episode_ends(self) -> np.ndarray:
        """Committed episode ends (an entry left by an interrupted append is not one)."""
        array = self.root["meta/episode_ends"]
        ends = np.asarray(array[:], dtype=np.int64)
        if len(ends) and ends[-1] == (array.fill_value or 0):
            previous = ends[-2] if len(ends) > 1 else 0
            if ends[-1] <= previous:
                ends = ends[:-1]
        return ends

    @property
    def n_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def n_steps(self) -> int:
        ends = self.episode_ends
        return int(ends[-1]) if len(ends) else 0

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self.episode_ends, prepend=0)

    @property
    def keys(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """{key: (per-step shape, dtype)} of every data array."""
        return {k: (tuple(a.shape[1:]), a.dtype) for k, a in sorted(self._arrays().items())}

    def check_keys(self, keys) -> list[str]:
        """The keys, after checking each exists; a missing one is one sentence naming the rest."""
        keys = list(keys)
        available = self.keys
        for key in keys:
            if key not in available:
                raise DataError(
                    f"{self.path} has no key {key!r} (available: {', '.join(available) or 'none'})"
                )
        return keys

    def get_episode(self, index: int, keys=None) -> dict[str, np.ndarray]:
        ends = self.episode_ends
        if not -len(ends) <= index < len(ends):
            raise IndexError(f"episode {index} out of range ({len(ends)} episodes)")
        index %= len(ends)
        start = int(ends[index - 1]) if index > 0 else 0
        arrays = self._arrays()
        keys = self.check_keys(keys if keys is not None else arrays)
        return {key: self._read(arrays[key], key, start, int(ends[index])) for key in keys}

    def load(self, keys=None) -> dict[str, np.ndarray]:
        """Every committed step of `keys` (default: all) as in-memory numpy arrays."""
        arrays = self._arrays()
        keys = self.check_keys(keys if keys is not None else arrays)
        return {key: self._read(arrays[key], key, 0, self.n_steps) for key in keys}

    def missing_chunk(self, key: str, array: zarr.Array) -> str | None:
        """The sentence for a committed chunk file that is not on disk (a copy cut short, a
        deleted file), else None. zarr reads a missing chunk as its fill value without a word,
        so the files of a directory store are looked for, once per array."""
        folder = self.path / "data" / key
        if key in self._complete or not folder.is_dir() or not self._writes_every_chunk():
            return None
        blocks = [range(-(-n // c)) for n, c in zip(array.shape[1:], array.chunks[1:], strict=True)]
        for row in range(-(-self.n_steps // array.chunks[0])):
            for rest in itertools.product(*blocks):
                name = array.metadata.encode_chunk_key((row, *rest))
                if not (folder / name).exists():
                    return (
                        f"{self.path}: data/{key}/{name} is missing (zarr would read it as "
                        f"{array.fill_value}s); the store is incomplete, copy or collect it again"
                    )
        self._complete.add(key)
        return None

    def _writes_every_chunk(self) -> bool:
        """Whether a missing chunk file means damage: zarr 3 leaves out chunks that hold only
        the fill value unless told otherwise, so only stores known to keep every chunk are
        checked (the toolkit's own since it said so, and zarr-2 stores such as
        diffusion_policy's, whose zarr 2.11+ writes every chunk by default)."""
        attrs = self.root.attrs
        if attrs.get(ALL_CHUNKS):
            return True
        return self.zarr_format == 2 and not str(attrs.get("created_by", "")).startswith(
            "dopr-robot"
        )

    def short_array(self, key: str, array: zarr.Array, end: int) -> str | None:
        """The sentence for an array that stops before the committed steps do, else None."""
        if array.shape[0] >= end:
            return None
        return (
            f"{self.path}: data/{key} has {array.shape[0]} steps but meta/episode_ends ends at "
            f"{end} (arrays of different lengths)"
        )

    def _read(self, array: zarr.Array, key: str, start: int, stop: int) -> np.ndarray:
        problem = self.short_array(key, array, stop) or self.missing_chunk(key, array)
        if problem:
            raise DataError(problem)
        try:
            return np.asarray(array[start:stop])
        except Exception as error:  # a truncated or corrupt chunk, as the codec reports it
            raise DataError(f"{self.path}: data/{key} cannot be read ({error})") from None

    # ---- writing --------------------------------------------------------------------------
    def add_episode(self, episode: dict[str, np.ndarray]) -> None:
        """Append one episode (same keys as the store, equal lengths ≥ 1); atomic, see above.
        Every chunk is written, even one holding only the fill value (see `missing_chunk`);
        zarr takes that setting when it opens an array, so the arrays are opened inside it."""
        if not self.writable:
            raise DataError(f"{self.path} is open read-only")
        with zarr.config.set({"array.write_empty_chunks": True}):
            self._append(episode)

    def _append(self, episode: dict[str, np.ndarray]) -> None:
        episode = {key: np.asarray(value) for key, value in episode.items()}
        lengths = {key: value.shape[0] if value.ndim else 0 for key, value in episode.items()}
        length = next(iter(lengths.values()), 0)
        if not episode or length < 1 or any(n != length for n in lengths.values()):
            raise DataError(f"an episode needs arrays of one common length >= 1, got {lengths}")
        arrays = self._arrays()
        if arrays and set(arrays) != set(episode):
            raise DataError(
                f"episode keys {sorted(episode)} differ from the store's {sorted(arrays)}"
            )
        for key, value in episode.items():  # check everything before writing anything
            if value.dtype.kind not in NUMERIC_KINDS:
                raise DataError(f"{key} has dtype {value.dtype}; only numeric arrays are stored")
            if key in arrays and arrays[key].shape[1:] != value.shape[1:]:
                raise DataError(
                    f"{key} has per-step shape {value.shape[1:]}, "
                    f"the store has {arrays[key].shape[1:]}"
                )
        ends = self.episode_ends  # one read of the committed ends for the whole append
        committed = len(ends)
        start = int(ends[-1]) if committed else 0
        stop = start + length
        for key, value in episode.items():
            array = arrays[key] if key in arrays else self._create_array(key, value)
            array.resize((stop, *array.shape[1:]))
            array[start:stop] = value.astype(array.dtype, copy=False)
        # the commit point: episode_ends grows only after every row is written
        ends_array = self.root["meta/episode_ends"]
        ends_array.resize((committed + 1,))
        ends_array[committed] = stop

    def _create_array(self, key: str, value: np.ndarray) -> zarr.Array:
        step_shape = value.shape[1:]
        chunks = (_chunk_length(step_shape, value.dtype), *step_shape)
        # diffusion_policy's default compressor, spelled for each format
        if self.zarr_format == 2:
            compressor = Blosc(cname="lz4", clevel=5, shuffle=Blosc.NOSHUFFLE)
        else:
            compressor = zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle")
        return self.root["data"].create_array(
            key,
            shape=(0, *step_shape),
            chunks=chunks,
            dtype=value.dtype,
            compressors=compressor,
        )

    def _sweep_partial_files(self) -> None:
        """Remove temporary files a killed writer left behind (zarr writes `*.partial`, then
        renames); they were never part of the store."""
        for leftover in self.path.rglob("*.partial"):
            leftover.unlink(missing_ok=True)

    def update_attrs(self, **attrs) -> None:
        if not self.writable:
            raise DataError(f"{self.path} is open read-only")
        self.root.attrs.update(attrs)

    def __repr__(self) -> str:
        return (
            f"ReplayBuffer({str(self.path)!r}, {self.n_episodes} episodes, {self.n_steps} steps, "
            f"keys={list(self.keys)}, zarr_format={self.zarr_format})"
        )
