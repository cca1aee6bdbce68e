"""LeRobot datasets: v3.0 and v2.1 read into stores, stores written as v3.0, round trips, bad
folders as one sentence, and a converted dataset trains."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from dopr_robot.cli import main
from dopr_robot.datasets import ReplayBuffer, convert_lerobot, write_lerobot
from dopr_robot.errors import DataError

from .conftest import CAMERA_LENGTHS, camera_store, smooth_frames, train_two_steps

av = pytest.importorskip("av")  # the `formats` extra
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def test_a_store_round_trips_through_a_v3_dataset_with_two_cameras(tmp_path, capsys):
    source = camera_store(tmp_path / "demos.zarr")
    assert main(["data", "convert", str(tmp_path / "demos.zarr"), str(tmp_path / "ds"),
                 "--to", "lerobot"]) == 0  # fmt: skip
    assert "H.264" in capsys.readouterr().out
    info = json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["total_frames"] == 22
    assert info["features"]["observation.images.top"]["dtype"] == "video"
    assert info["features"]["observation.state"] == {
        "dtype": "float32",
        "shape": [4],
        "names": None,
    }
    assert main(["data", "convert", str(tmp_path / "ds"), str(tmp_path / "back.zarr")]) == 0
    back = ReplayBuffer.open(tmp_path / "back.zarr")
    assert list(back.episode_lengths) == list(CAMERA_LENGTHS)
    for key in ("state", "action"):  # numbers survive exactly
        np.testing.assert_array_equal(back.load([key])[key], source.load([key])[key])
    for key in ("top", "wrist"):  # frames within H.264's error, in the right order
        original = source.load([key])[key].astype(int)
        decoded = back.load([f"images_{key}"])[f"images_{key}"].astype(int)
        assert np.abs(decoded - original).mean() < 3
        step_error = np.abs(decoded[1:] - original[:-1]).mean()  # one frame off would show
        assert step_error > np.abs(decoded - original).mean() + 1
    attrs = back.attrs
    assert attrs["source_format"] == "lerobot v3.0"
    assert attrs["key_mapping"]["images_top"] == "observation.images.top"
    assert attrs["lerobot"]["tasks"] == ["dopr_robot/ReachChain-v0"]
    # and again: the store keys and feature names are now stable
    write_lerobot(tmp_path / "back.zarr", tmp_path / "ds2")
    names = json.loads((tmp_path / "ds2" / "meta" / "info.json").read_text())["features"]
    assert "observation.images.top" in names and "observation.state" in names
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "ds")]) == 0
    assert "LeRobot v3.0 dataset, 20 fps" in capsys.readouterr().out


def _encode(path, frames, fps):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "10"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_v21_dataset(root, fps=10):
    """A LeRobot v2.1 folder written directly (one parquet and one mp4 per episode and camera,
    meta/episodes.jsonl listed out of order), independent of the toolkit's writer."""
    rng = np.random.default_rng(1)
    cameras = ("observation.images.front", "observation.images.side")
    info = {
        "codebase_version": "v2.1", "fps": fps, "chunks_size": 1000,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": (
            "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
        ),
        "features": {
            "observation.state": {"dtype": "float32", "shape": [3], "names": None},
            "action": {"dtype": "float32", "shape": [2], "names": None},
            **{c: {"dtype": "video", "shape": [32, 48, 3], "names": None} for c in cameras},
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        },
    }  # fmt: skip
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "tasks.jsonl").write_text(
        '{"task_index": 1, "task": "push"}\n{"task_index": 0, "task": "reach"}\n'
    )
    expected = {}
    lines = []
    for episode, n in ((1, 4), (0, 6)):
        state = rng.normal(size=(n, 3)).astype(np.float32)
        action = rng.normal(size=(n, 2)).astype(np.float32)
        table = pa.table(
            {
                "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(state.ravel()), 3),
                "action": pa.FixedSizeListArray.from_arrays(pa.array(action.ravel()), 2),
                "timestamp": pa.array(np.arange(n, dtype=np.float32) / fps),
                "episode_index": pa.array(np.full(n, episode, np.int64)),
            }
        )
        path = root / "data" / "chunk-000" / f"episode_{episode:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        frames = {}
        for k, camera in enumerate(cameras):
            frames[camera] = smooth_frames(n, 20 * episode + 7 * k)
            video = root / "videos" / "chunk-000" / camera / f"episode_{episode:06d}.mp4"
            video.parent.mkdir(parents=True, exist_ok=True)
            _encode(video, frames[camera], fps)
        expected[episode] = (state, action, frames)
        lines.append(json.dumps({"episode_index": episode, "tasks": ["reach"], "length": n}))
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    return expected


def test_a_v21_dataset_converts_in_episode_order(tmp_path):
    expected = make_v21_dataset(tmp_path / "v21")
    convert_lerobot(tmp_path / "v21", tmp_path / "out.zarr")
    buffer = ReplayBuffer.open(tmp_path / "out.zarr")
    assert list(buffer.episode_lengths) == [6, 4]  # episode 0 first, though listed second
    for index, episode in enumerate((0, 1)):
        state, action, frames = expected[episode]
        got = buffer.get_episode(index)
        np.testing.assert_array_equal(got["state"], state)
        np.testing.assert_array_equal(got["action"], action)
        for camera, key in (("observation.images.front", "images_front"),
                            ("observation.images.side", "images_side")):  # fmt: skip
            assert np.abs(got[key].astype(int) - frames[camera].astype(int)).mean() < 3
    assert buffer.attrs["lerobot"]["tasks"] == ["reach", "push"]
    assert buffer.attrs["source_format"] == "lerobot v2.1"


def test_bad_lerobot_folders_are_one_sentence_and_write_nothing(tmp_path, capsys):
    camera_store(tmp_path / "demos.zarr")
    write_lerobot(tmp_path / "demos.zarr", tmp_path / "ds")
    root = tmp_path / "ds"
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())

    def expect(message, *flags):
        out = tmp_path / "out.zarr"
        assert main(["data", "convert", str(root), str(out), *flags]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and message in error, error
        assert not out.exists()

    # a feature whose dtype cannot be stored
    info["features"]["language_instruction"] = {"dtype": "string", "shape": [1], "names": None}
    info_path.write_text(json.dumps(info))
    expect("has dtype 'string', which cannot be stored",
           "--keys", "action,language_instruction")  # fmt: skip
    expect("has no feature 'observation.velocity'", "--keys", "action,observation.velocity")
    # an mp4 shorter than its episodes' timestamps
    video = root / "videos" / "observation.images.top" / "chunk-000" / "file-000.mp4"
    _encode(video, smooth_frames(15, 0), 20)  # 15 of 22 frames
    expect("the video is shorter than its episode's timestamps")
    assert main(["data", "validate", str(root)]) == 2
    assert "shorter than its episode's timestamps" in capsys.readouterr().out
    # a missing parquet file
    (root / "data" / "chunk-000" / "file-000.parquet").unlink()
    expect("data file data/chunk-000/file-000.parquet is missing")


def test_a_converted_lerobot_dataset_trains(tmp_path, capsys):
    camera_store(tmp_path / "demos.zarr")
    write_lerobot(tmp_path / "demos.zarr", tmp_path / "ds")
    convert_lerobot(tmp_path / "ds", tmp_path / "back.zarr")
    argv = train_two_steps(
        tmp_path / "back.zarr",
        tmp_path / "run",
        "state,images_top,images_wrist",
        4,
        2,
        "--val-ratio",
        "0.34",
    )
    assert main(argv) == 0
    assert "2 steps" in capsys.readouterr().out


def test_writing_refuses_odd_image_sizes(tmp_path):
    buffer = ReplayBuffer.create(tmp_path / "odd.zarr")
    buffer.add_episode({"action": np.zeros((3, 2), np.float32),
                        "cam": np.zeros((3, 31, 48, 3), np.uint8)})  # fmt: skip
    with pytest.raises(DataError, match="needs even sizes"):
        write_lerobot(tmp_path / "odd.zarr", tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def make_v30_dataset(root, fps=10):
    """A LeRobot v3.0 folder written directly, laid out as LeRobot splits large datasets: three
    episodes over two data files and two video files per camera, so the third episode starts
    mid-file (from_timestamp > 0), the episodes table in two files, stats columns included."""
    rng = np.random.default_rng(2)
    cameras = ("observation.images.top", "observation.images.wrist")
    info = {
        "codebase_version": "v3.0", "fps": fps, "chunks_size": 1000, "robot_type": "so100",
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": {
            "observation.state": {"dtype": "float32", "shape": [6], "names": None},
            "action": {"dtype": "float32", "shape": [6], "names": None},
            **{c: {"dtype": "video", "shape": [32, 48, 3], "names": None} for c in cameras},
            **{k: {"dtype": "int64", "shape": [1], "names": None}
               for k in ("frame_index", "episode_index", "index", "task_index")},
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        },
    }  # fmt: skip
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    pq.write_table(
        pa.table({"task_index": [0, 1], "task": ["pick the cube", "place it"]}),
        root / "meta" / "tasks.parquet",
    )
    layout = [(0, 5, 0), (1, 4, 1), (2, 6, 1)]  # (episode, length, file)
    expected, rows, videos, meta = {}, {0: [], 1: []}, {}, []
    offsets = {0: 0, 1: 0}
    total = 0
    for episode, n, file in layout:
        state = rng.normal(size=(n, 6)).astype(np.float32)
        action = rng.normal(size=(n, 6)).astype(np.float32)
        frames = {c: smooth_frames(n, 30 * episode + 9 * k) for k, c in enumerate(cameras)}
        expected[episode] = (state, action, frames)
        rows[file].append((episode, state, action))
        for camera in cameras:
            videos.setdefault((camera, file), []).append(frames[camera])
        start = offsets[file]
        meta.append({
            "episode_index": episode, "tasks": ["pick the cube"], "length": n,
            "data/chunk_index": 0, "data/file_index": file,
            "dataset_from_index": total, "dataset_to_index": total + n,
            "stats/action/mean": [0.0] * 6,
            **{f"videos/{c}/chunk_index": 0 for c in cameras},
            **{f"videos/{c}/file_index": file for c in cameras},
            **{f"videos/{c}/from_timestamp": start / fps for c in cameras},
            **{f"videos/{c}/to_timestamp": (start + n) / fps for c in cameras},
        })  # fmt: skip
        offsets[file] += n
        total += n
    for file, parts in rows.items():
        state = np.concatenate([p[1] for p in parts])
        action = np.concatenate([p[2] for p in parts])
        frame_index = np.concatenate([np.arange(len(p[1])) for p in parts])
        table = pa.table({
            "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(state.ravel()), 6),
            "action": pa.FixedSizeListArray.from_arrays(pa.array(action.ravel()), 6),
            "timestamp": pa.array((frame_index / fps).astype(np.float32)),
            "frame_index": pa.array(frame_index.astype(np.int64)),
            "episode_index": pa.array(np.concatenate([[p[0]] * len(p[1]) for p in parts])),
        })  # fmt: skip
        path = root / "data" / "chunk-000" / f"file-{file:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    for (camera, file), parts in videos.items():
        path = root / "videos" / camera / "chunk-000" / f"file-{file:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        _encode(path, np.concatenate(parts), fps)
    for index, part in enumerate((meta[:2], meta[2:])):
        pq.write_table(
            pa.Table.from_pylist(part),
            root / "meta" / "episodes" / "chunk-000" / f"file-{index:03d}.parquet",
        )
    return expected


def test_a_multi_file_v30_dataset_with_two_cameras_converts_and_trains(tmp_path, capsys):
    expected = make_v30_dataset(tmp_path / "v30")
    assert main(["data", "validate", str(tmp_path / "v30")]) == 0
    convert_lerobot(tmp_path / "v30", tmp_path / "out.zarr")
    buffer = ReplayBuffer.open(tmp_path / "out.zarr")
    assert list(buffer.episode_lengths) == [5, 4, 6]
    for episode in range(3):
        state, action, frames = expected[episode]
        got = buffer.get_episode(episode)
        np.testing.assert_array_equal(got["state"], state)
        np.testing.assert_array_equal(got["action"], action)
        for camera, key in (("observation.images.top", "images_top"),
                            ("observation.images.wrist", "images_wrist")):  # fmt: skip
            assert np.abs(got[key].astype(int) - frames[camera].astype(int)).mean() < 3
    attrs = buffer.attrs
    assert attrs["lerobot"]["tasks"] == ["pick the cube", "place it"]
    assert attrs["lerobot"]["robot_type"] == "so100"
    argv = train_two_steps(
        tmp_path / "out.zarr",
        tmp_path / "run",
        "state,images_top,images_wrist",
        8,
        4,
        "--val-ratio",
        "0.34",
    )
    assert main(argv) == 0
