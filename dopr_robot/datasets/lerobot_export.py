"""A replay-buffer store → a LeRobot v3.0 dataset folder that LeRobot's own code can keep using.

Written to match what `lerobot` 0.6.1 writes (`src/lerobot/datasets/`), because LeRobot does
not only read a dataset, it appends to it (`LeRobotDataset.resume` + `save_episode`), merges it
(`aggregate_datasets`) and normalises by its statistics:

- `fps` is an integer: LeRobot builds a `Fraction` from it and refuses a float;
- `meta/episodes` carries LeRobot's per-episode `stats/<feature>/<stat>` columns for every
  feature (frame counters included), since a resumed dataset's new rows bring them and the
  tables must have the same columns to load together;
- `meta/stats.json` and the per-episode columns hold min, max, mean, std, count and the
  quantiles q01 … q99 that quantile-normalised policies (pi0.5's default) need
  (`lerobot_stats.py`);
- LeRobot reads every feature whose name starts with `action` as a policy output, so store keys
  `action_<x>` are left out; `keep_executed_action=True` exports the toolkit's noisy executed
  action as `executed_action`, a name policies ignore and the reader maps back.

One data file, one H.264 mp4 per image key. Written beside `target` and renamed at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import DataError
from . import lerobot_stats
from .lerobot import CHUNK, EXECUTED_ACTION, VIDEO_CODEC, VIDEO_CRF, _formats_extra
from .output import Progress, check_output, no_progress, write_output_atomically
from .replay_buffer import ReplayBuffer

FRAME_DTYPES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64",
                "index": "int64", "task_index": "int64"}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LeRobotExport:
    """What `write_lerobot` wrote: the folder, its fps, feature names and store keys left out."""

    path: Path
    fps: int
    features: dict[str, str]  # store key → LeRobot feature
    left_out: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class _Plan:
    fps: int
    names: dict[str, str]  # exported store key → feature name
    images: set[str]
    tasks: list[str]
    task_of: np.ndarray  # task index per episode
    starts: np.ndarray
    ends: np.ndarray
    robot_type: str | None


def integer_fps(fps: float | None, stored) -> int:
    """The dataset's fps as LeRobot needs it (an integer), or one sentence."""
    value = float(fps if fps is not None else (stored or 10))
    if not value > 0:
        raise DataError(f"fps must be > 0, got {value:g}")
    if value != int(value):
        raise DataError(
            f"LeRobot datasets need an integer fps (LeRobot reads it as a whole number of "
            f"frames per second), got {value:g}; pass --fps with a whole number"
        )
    return int(value)


def feature_name(key: str, is_image: bool, mapping: dict) -> str:
    if key in mapping:
        return mapping[key]
    if key == "action":
        return key
    if key == "action_executed":
        return EXECUTED_ACTION
    return f"observation.images.{key}" if is_image else f"observation.{key}"


def _plan(buffer: ReplayBuffer, source: Path, fps: float | None, keep_executed: bool) -> _Plan:
    keys = buffer.keys
    if buffer.n_episodes == 0:
        raise DataError(f"{source} holds no episodes")
    if "action" not in keys:
        raise DataError(f"{source} has no 'action' key")
    attrs = buffer.attrs
    exported = [
        k for k in keys
        if not k.startswith("action_") or (k == "action_executed" and keep_executed)
    ]  # fmt: skip
    mapping = {k: v for k, v in (attrs.get("key_mapping") or {}).items() if k in exported}
    images = {k for k in exported if len(keys[k][0]) == 3 and keys[k][1] == np.uint8}
    for key in images:
        height, width = keys[key][0][:2]
        if height % 2 or width % 2:
            raise DataError(f"{source}: images under {key!r} are {height}x{width}; H.264 "
                            "(yuv420p) needs even sizes")  # fmt: skip
    meta = attrs.get("lerobot") or {}
    tasks = list(meta.get("tasks") or [str(attrs.get("env_id", "demonstration"))])
    named = [(e.get("tasks") or [None])[0] for e in meta.get("episodes", [])]
    ends = buffer.episode_ends
    task_of = [
        tasks.index(named[e]) if e < len(named) and named[e] in tasks else 0
        for e in range(len(ends))
    ]
    return _Plan(
        fps=integer_fps(fps, attrs.get("fps")),
        names={k: feature_name(k, k in images, mapping) for k in exported},
        images=images,
        tasks=tasks,
        task_of=np.asarray(task_of, np.int64),
        starts=np.concatenate([[0], ends[:-1]]).astype(np.int64),
        ends=np.asarray(ends, np.int64),
        robot_type=meta.get("robot_type"),
    )


def _frame_columns(plan: _Plan) -> dict[str, np.ndarray]:
    lengths = plan.ends - plan.starts
    frame_index = np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)
    return {
        "timestamp": (frame_index / plan.fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.repeat(np.arange(len(lengths)), lengths).astype(np.int64),
        "index": np.arange(int(plan.ends[-1]), dtype=np.int64),
        "task_index": np.repeat(plan.task_of, lengths),
    }


def _feature_spec(plan: _Plan, name: str, values: np.ndarray, is_image: bool) -> dict:
    if not is_image:
        return {"dtype": str(values.dtype), "shape": list(values.shape[1:]) or [1], "names": None}
    height, width, channels = (int(v) for v in values.shape[1:])
    return {
        "dtype": "video",
        "shape": [height, width, channels],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height, "video.width": width, "video.codec": "h264",
            "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": plan.fps,
            "video.channels": channels, "has_audio": False,
        },
    }  # fmt: skip


def _statistics(plan: _Plan, columns: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(stats.json, {feature: [per-episode stats]}) for every exported column."""
    images = {plan.names[k] for k in plan.images}
    per_episode: dict[str, list] = {}
    overall = {}
    for name, values in columns.items():
        image = name in images
        compute = lerobot_stats.image_stats if image else lerobot_stats.numeric_stats
        parts = [compute(values[s:e]) for s, e in zip(plan.starts, plan.ends, strict=True)]
        per_episode[name] = parts
        whole = lerobot_stats.aggregate(parts) if image else lerobot_stats.numeric_stats(values)
        overall[name] = lerobot_stats.as_lists(whole)
    return overall, per_episode


def _episodes_table(pa, plan: _Plan, per_episode: dict) -> object:
    n = len(plan.ends)
    table = {
        "episode_index": list(range(n)),
        "tasks": [[plan.tasks[t]] for t in plan.task_of],
        "length": (plan.ends - plan.starts).tolist(),
        "data/chunk_index": [0] * n,
        "data/file_index": [0] * n,
        "dataset_from_index": plan.starts.tolist(),
        "dataset_to_index": plan.ends.tolist(),
    }
    for key in sorted(plan.images):
        name = plan.names[key]
        table[f"videos/{name}/chunk_index"] = [0] * n
        table[f"videos/{name}/file_index"] = [0] * n
        table[f"videos/{name}/from_timestamp"] = (plan.starts / plan.fps).tolist()
        table[f"videos/{name}/to_timestamp"] = (plan.ends / plan.fps).tolist()
    for name, parts in per_episode.items():
        for stat in lerobot_stats.STAT_NAMES:
            table[f"stats/{name}/{stat}"] = [np.asarray(p[stat]).tolist() for p in parts]
    table["meta/episodes/chunk_index"] = [0] * n
    table["meta/episodes/file_index"] = [0] * n
    return pa.table(table)


def _info(plan: _Plan, features: dict) -> dict:
    n_episodes = len(plan.ends)
    return {
        "codebase_version": "v3.0",
        "robot_type": plan.robot_type,
        "total_episodes": n_episodes,
        "total_frames": int(plan.ends[-1]),
        "total_tasks": len(plan.tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": plan.fps,
        "splits": {"train": f"0:{n_episodes}"},
        "data_path": "data/" + CHUNK + ".parquet",
        "video_path": ("videos/{video_key}/" + CHUNK + ".mp4") if plan.images else None,
        "features": features,
    }


def _fill(directory: Path, plan: _Plan, data: dict, progress: Progress) -> None:
    import pyarrow as pa

    av, pq = _formats_extra()
    (directory / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (directory / "data" / "chunk-000").mkdir(parents=True)
    named = {plan.names[k]: data[k] for k in plan.names}
    columns = {**named, **_frame_columns(plan)}
    features = {
        name: _feature_spec(plan, name, values, key in plan.images)
        for key, name, values in [(k, plan.names[k], data[k]) for k in plan.names]
    }
    features.update({name: {"dtype": dtype, "shape": [1], "names": None}
                     for name, dtype in FRAME_DTYPES.items()})  # fmt: skip
    overall, per_episode = _statistics(plan, columns)
    rows = {}
    for name, values in columns.items():
        if features[name]["dtype"] == "video":
            continue
        if name in FRAME_DTYPES:
            rows[name] = pa.array(values)
        else:
            flat = values.reshape(len(values), -1)
            rows[name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
    pq.write_table(pa.table(rows), directory / "data" / "chunk-000" / "file-000.parquet")
    for key in sorted(plan.images):
        folder = directory / "videos" / plan.names[key] / "chunk-000"
        folder.mkdir(parents=True)
        _encode(av, folder / "file-000.mp4", progress(data[key]), plan.fps)
    episodes = _episodes_table(pa, plan, per_episode)
    pq.write_table(episodes, directory / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    _write_tasks(pa, pq, plan.tasks, directory / "meta" / "tasks.parquet")
    (directory / "meta" / "info.json").write_text(json.dumps(_info(plan, features), indent=2))
    (directory / "meta" / "stats.json").write_text(json.dumps(overall, indent=2))


def write_lerobot(
    source, target, *, fps: float | None = None, keep_executed_action: bool = False,
    overwrite: bool = False, progress: Progress = no_progress,
) -> LeRobotExport:  # fmt: skip
    """A replay-buffer store → a LeRobot v3.0 dataset folder (see the module docstring)."""
    _formats_extra()
    source, target = Path(source), Path(target)
    check_output(source, target, overwrite)
    if target.suffix == ".zip":
        raise DataError(f"{target}: a LeRobot dataset is a folder, not a zip")
    buffer = ReplayBuffer.open(source)
    plan = _plan(buffer, source, fps, keep_executed_action)
    data = buffer.load(list(plan.names))
    write_output_atomically(
        target, overwrite, lambda directory: _fill(directory, plan, data, progress)
    )
    left_out = [k for k in buffer.keys if k not in plan.names]
    return LeRobotExport(path=target, fps=plan.fps, features=dict(plan.names), left_out=left_out)


def _write_tasks(pa, pq, tasks: list[str], path: Path) -> None:
    """tasks.parquet as LeRobot writes it with pandas: the task text is the (named) index."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "dopr-robot", "version": __version__},
        "pandas_version": "2.2.0",
    }  # fmt: skip
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)


def _encode(av, path: Path, frames, fps: float) -> None:
    """Frames (uint8 [H, W, 3], one at a time) → an H.264 mp4 at `fps`."""
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = None
        for image in frames:
            if stream is None:
                stream = container.add_stream(VIDEO_CODEC, rate=Fraction(fps).limit_denominator())
                stream.width, stream.height = image.shape[1], image.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": VIDEO_CRF}
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
