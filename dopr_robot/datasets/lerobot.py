"""LeRobot datasets into the toolkit's store: read v3.0 and v2.1 datasets (writing v3.0 is
`lerobot_export.py`).

A LeRobot dataset is a folder: `meta/info.json` (fps, features with dtype and shape, path
templates), per-frame rows in parquet files, and one mp4 per camera holding the frames. v3.0
concatenates episodes inside both (`data/chunk-000/file-000.parquet`,
`videos/<key>/chunk-000/file-000.mp4`) and locates each episode through
`meta/episodes/chunk-*/file-*.parquet` (row range, video file, `from_timestamp`); v2.1 keeps one
parquet and one mp4 per episode and lists episodes in `meta/episodes.jsonl`. The `lerobot`
package itself does not fit this stack (its releases need Python ≥ 3.12 or torch < 2.11), so this
module reads and writes the format with pyarrow and PyAV directly (the `formats` extra).

Keys (`LeRobot feature → store key`): `action` stays `action`; `observation.<rest>` becomes
`<rest>` with dots turned into underscores (`observation.state → state`,
`observation.images.top → images_top`). The mapping is recorded in the store's attributes
(`key_mapping`), with the tasks and per-episode metadata (`lerobot`), and the writer uses it to
give a round-tripped store its original feature names back. The one exception to the rule is
`executed_action`, the name the writer gives the toolkit's `action_executed` (a name starting
with `action` would be read by LeRobot as a second policy output); it maps back to
`action_executed`.

Video frames are decoded to uint8 RGB at the dataset's fps: frame i of an episode is the frame
whose time is `from_timestamp + timestamp_i` (within half a frame), as LeRobot's own reader
queries it. The writer encodes H.264 (libx264, yuv420p, CRF 10: near-lossless, small files,
readable by every LeRobot video backend); LeRobot's own default is AV1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import DataError
from .output import Progress, check_output, no_progress, write_output_atomically
from .replay_buffer import ReplayBuffer

NUMERIC_DTYPES = {"float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8",
                  "bool"}  # fmt: skip
FRAME_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
VIDEO_CODEC = "libx264"
VIDEO_CRF = "10"
CHUNK = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EXECUTED_ACTION = "executed_action"  # the feature holding the store's `action_executed`


def _formats_extra():
    try:
        import av
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            "LeRobot datasets need pyarrow and PyAV: pip install 'dopr-robot[formats]'"
        ) from None
    return av, pq


def is_lerobot_dataset(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "meta" / "info.json").is_file()


def store_key(feature: str) -> str:
    """The store key of a LeRobot feature (see the module docstring)."""
    if feature == EXECUTED_ACTION:
        return "action_executed"
    if feature.startswith("observation."):
        feature = feature.removeprefix("observation.")
    return feature.replace(".", "_")


# ---- reading ---------------------------------------------------------------------------------
class LeRobotDataset:
    """A LeRobot dataset on disk (v3.0 or v2.x), read-only: its episodes, rows and frames."""

    def __init__(self, root: str | Path):
        self.av, self.pq = _formats_extra()
        self.root = Path(root)
        if not is_lerobot_dataset(self.root):
            raise DataError(f"{self.root} is not a LeRobot dataset (no meta/info.json)")
        try:
            self.info = json.loads((self.root / "meta" / "info.json").read_text())
            self.version = str(self.info["codebase_version"])
            self.fps = float(self.info["fps"])
            self.features = dict(self.info["features"])
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(
                f"{self.root}/meta/info.json is not a LeRobot info file ({error})"
            ) from None
        if not (self.version.startswith("v3") or self.version.startswith("v2")):
            raise DataError(
                f"{self.root} is a LeRobot {self.version} dataset; v3.0 and v2.x are supported"
            )
        self.tasks = self._tasks()
        self.episodes = self._episodes()
        self._tables: dict[Path, dict] = {}

    # metadata
    def _read_parquet(self, path: Path, what: str):
        if not path.is_file():
            raise DataError(f"{self.root}: {what} {path.relative_to(self.root)} is missing")
        try:
            return self.pq.read_table(path)
        except Exception as error:  # pyarrow raises several types for a broken file
            raise DataError(f"{path} is not a readable parquet file ({error})") from None

    def _jsonl(self, relative: str) -> list[dict]:
        path = self.root / relative
        if not path.is_file():
            raise DataError(f"{self.root}: {relative} is missing")
        try:
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except ValueError as error:
            raise DataError(f"{path} is not JSON lines ({error})") from None

    def _tasks(self) -> list[str]:
        if self.version.startswith("v2"):
            rows = self._jsonl("meta/tasks.jsonl")
            return [row["task"] for row in sorted(rows, key=lambda r: r["task_index"])]
        table = self._read_parquet(self.root / "meta" / "tasks.parquet", "tasks file").to_pydict()
        text = next((k for k in table if k != "task_index"), None)
        if text is None:
            return []
        return [t for _, t in sorted(zip(table["task_index"], table[text], strict=True))]

    def _episodes(self) -> list[dict]:
        if self.version.startswith("v2"):
            rows = sorted(self._jsonl("meta/episodes.jsonl"), key=lambda r: r["episode_index"])
            chunk_size = int(self.info.get("chunks_size", 1000))
            for row in rows:
                row["chunk"] = row["episode_index"] // chunk_size
            return rows
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise DataError(f"{self.root}: meta/episodes/chunk-*/file-*.parquet is missing")
        rows = []
        for file in files:
            table = self._read_parquet(file, "episodes file")
            keep = [c for c in table.column_names if not c.startswith("stats/")]
            rows += table.select(keep).to_pylist()
        return sorted(rows, key=lambda r: r["episode_index"])

    def default_keys(self) -> list[str]:
        """Every observation.* feature and the action, in info.json order."""
        return [k for k in self.features if k == "action" or k.startswith("observation.")]

    def check_keys(self, keys: list[str]) -> None:
        for key in keys:
            if key not in self.features:
                known = ", ".join(k for k in self.features if k not in FRAME_COLUMNS)
                raise DataError(f"{self.root} has no feature {key!r} (features: {known})")
            dtype = self.features[key].get("dtype")
            if dtype not in NUMERIC_DTYPES | {"video", "image"}:
                raise DataError(
                    f"{self.root}: feature {key!r} has dtype {dtype!r}, which cannot be stored "
                    "(numeric, image and video features can); choose others with --keys"
                )
        if "action" not in keys:
            raise DataError(f"the chosen keys of {self.root} must include 'action'")

    # rows and frames
    def _data_path(self, episode: dict) -> Path:
        template = self.info["data_path"]
        if self.version.startswith("v2"):
            name = template.format(
                episode_chunk=episode["chunk"], episode_index=episode["episode_index"]
            )
        else:
            name = template.format(
                chunk_index=episode["data/chunk_index"], file_index=episode["data/file_index"]
            )
        return self.root / name

    def _video(self, episode: dict, key: str) -> tuple[Path, float]:
        template = self.info["video_path"]
        if self.version.startswith("v2"):
            name = template.format(
                episode_chunk=episode["chunk"],
                video_key=key,
                episode_index=episode["episode_index"],
            )
            return self.root / name, 0.0
        name = template.format(
            video_key=key,
            chunk_index=episode[f"videos/{key}/chunk_index"],
            file_index=episode[f"videos/{key}/file_index"],
        )
        return self.root / name, float(episode[f"videos/{key}/from_timestamp"])

    def rows(self, episode: dict, keys: list[str]) -> dict[str, np.ndarray]:
        """The episode's per-frame columns (non-video keys and `timestamp`) as arrays."""
        path = self._data_path(episode)
        if path not in self._tables:
            self._tables = {path: self._read_parquet(path, "data file")}  # one file at a time
        table = self._tables[path]
        index = np.asarray(table.column("episode_index").to_numpy())
        selected = np.flatnonzero(index == episode["episode_index"])
        if len(selected) != int(episode["length"]):
            raise DataError(
                f"{path} holds {len(selected)} rows of episode {episode['episode_index']}, "
                f"but the episode metadata says {episode['length']}"
            )
        part = table.take(selected)
        out = {"timestamp": np.asarray(part.column("timestamp").to_numpy(), np.float64)}
        for key in keys:
            if self.features[key].get("dtype") != "video":
                out[key] = self._column(part, key)
        return out

    def _column(self, table, key: str) -> np.ndarray:
        feature = self.features[key]
        column = table.column(key).combine_chunks()
        if feature["dtype"] == "image":  # PNG/JPEG bytes in a struct, as LeRobot stores images
            from io import BytesIO

            from PIL import Image

            return np.stack(
                [
                    np.asarray(Image.open(BytesIO(v["bytes"])).convert("RGB"))
                    for v in column.to_pylist()
                ]
            )
        import pyarrow.types as types

        shape = [int(s) for s in feature.get("shape", [1])]
        values = column
        while (
            types.is_list(values.type)
            or types.is_fixed_size_list(values.type)
            or (types.is_large_list(values.type))
        ):
            values = values.flatten()
        array = np.asarray(values.to_numpy(zero_copy_only=False))
        return array.reshape(len(table), *shape).astype(feature["dtype"], copy=False)

    def frames(self, episode: dict, key: str, timestamps: np.ndarray) -> np.ndarray:
        """uint8 [T, H, W, 3]: the frame at `from_timestamp + t` for each t, within half a frame."""
        path, start = self._video(episode, key)
        if not path.is_file():
            raise DataError(f"{self.root}: video {path.relative_to(self.root)} is missing")
        wanted = start + np.asarray(timestamps, np.float64)
        tolerance = 0.5 / self.fps
        out: list[np.ndarray] = []
        try:
            with self.av.open(str(path)) as container:
                stream = container.streams.video[0]
                if wanted[0] > tolerance:
                    container.seek(int(max(0.0, wanted[0] - 1.0) / stream.time_base), stream=stream)
                for frame in container.decode(stream):
                    t = float(frame.time)
                    if t < wanted[len(out)] - tolerance:
                        continue
                    if t > wanted[len(out)] + tolerance:
                        break  # a frame the episode needs is not in the file
                    image = frame.to_ndarray(format="rgb24")
                    while len(out) < len(wanted) and abs(t - wanted[len(out)]) <= tolerance:
                        out.append(image)
                    if len(out) == len(wanted):
                        break
        except self.av.error.FFmpegError as error:
            raise DataError(f"{path} cannot be decoded ({error})") from None
        if len(out) < len(wanted):
            raise DataError(
                f"{path} has no frame at {wanted[len(out)]:.3f} s for episode "
                f"{episode['episode_index']} (frame {len(out)} of {len(wanted)}): the video is "
                "shorter than its episode's timestamps"
            )
        return np.stack(out)

    def episode(self, episode: dict, keys: list[str]) -> dict[str, np.ndarray]:
        """{store key: [T, ...]} for one episode."""
        rows = self.rows(episode, keys)
        out = {}
        for key in keys:
            if self.features[key].get("dtype") == "video":
                out[store_key(key)] = self.frames(episode, key, rows["timestamp"])
            else:
                out[store_key(key)] = rows[key]
        return out


def validate_lerobot(source, keys: list[str] | None = None) -> list[str]:
    """Every problem found reading each episode (rows and frames), one sentence each."""
    dataset = LeRobotDataset(source)
    keys = list(keys) if keys else dataset.default_keys()
    dataset.check_keys(keys)
    found = []
    for episode in dataset.episodes:
        try:
            dataset.episode(episode, keys)
        except DataError as error:
            found.append(str(error))
    return found


def convert_lerobot(
    source,
    target,
    *,
    keys: list[str] | None = None,
    zarr_format: int = 3,
    overwrite: bool = False,
    progress: Progress = no_progress,
) -> Path:
    """A LeRobot v3.0 / v2.x dataset → replay-buffer store, episodes in order."""
    source, target = Path(source), Path(target)
    dataset = LeRobotDataset(source)
    check_output(source, target, overwrite)
    keys = list(keys) if keys else dataset.default_keys()
    dataset.check_keys(keys)
    names = [store_key(k) for k in keys]
    if len(set(names)) != len(names):
        raise DataError(f"the features {keys} map onto clashing store keys {names}")
    episodes_meta = [
        {
            "episode_index": int(e["episode_index"]),
            "length": int(e["length"]),
            "tasks": list(e.get("tasks") or []),
        }
        for e in dataset.episodes
    ]
    attrs = {
        "source": str(source),
        "source_format": f"lerobot {dataset.version}",
        "key_mapping": {store_key(k): k for k in keys},
        "fps": dataset.fps,
        "lerobot": {
            "tasks": dataset.tasks,
            "episodes": episodes_meta,
            "robot_type": dataset.info.get("robot_type"),
        },
        "created_by": f"dopr-robot {__version__}",
    }

    def fill(directory: Path) -> None:
        out = ReplayBuffer.create(directory, zarr_format=zarr_format, attrs=attrs)
        for episode in progress(dataset.episodes):
            out.add_episode(dataset.episode(episode, keys))

    write_output_atomically(target, overwrite, fill)
    return target
