"""The LeRobot export as LeRobot 0.6.1 needs it to keep using a dataset: an integer fps, the
per-episode `stats/<feature>/<stat>` columns for every feature, quantiles in stats.json and per
episode, and no second `action*` feature. (`make interop` runs LeRobot's own code on it.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dopr_robot.cli import main
from dopr_robot.datasets import ReplayBuffer, convert_lerobot, write_lerobot
from dopr_robot.datasets.lerobot_stats import QUANTILE_KEYS, STAT_NAMES, aggregate, image_stats
from dopr_robot.errors import DataError

from .conftest import camera_store, smooth_frames

pq = pytest.importorskip("pyarrow.parquet")


def store_with_executed_action(path, fps=10.0):
    rng = np.random.default_rng(3)
    buffer = ReplayBuffer.create(path, attrs={"env_id": "gym_pusht/PushT-v0", "fps": fps})
    for n in (6, 9):
        action = rng.normal(size=(n, 2)).astype(np.float32)
        buffer.add_episode({"state": rng.normal(size=(n, 3)).astype(np.float32),
                            "action": action, "action_executed": action + 1})  # fmt: skip
    return buffer


def episodes_table(root) -> dict:
    return pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pydict()


def test_fps_is_an_integer_and_a_fractional_one_is_one_sentence(tmp_path, capsys):
    store_with_executed_action(tmp_path / "a.zarr", fps=10.0)
    write_lerobot(tmp_path / "a.zarr", tmp_path / "ds")
    info = json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())
    assert info["fps"] == 10 and isinstance(info["fps"], int)
    argv = ["data", "convert", str(tmp_path / "a.zarr"), str(tmp_path / "ds2"), "--to", "lerobot"]
    assert main([*argv, "--fps", "7.5"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "need an integer fps" in error and "7.5" in error
    assert not (tmp_path / "ds2").exists()
    store_with_executed_action(tmp_path / "b.zarr", fps=12.5)
    with pytest.raises(DataError, match="integer fps"):
        write_lerobot(tmp_path / "b.zarr", tmp_path / "ds3")
    assert write_lerobot(tmp_path / "b.zarr", tmp_path / "ds3", fps=12).fps == 12


def test_every_feature_has_per_episode_stats_columns_with_quantiles(tmp_path):
    source = camera_store(tmp_path / "demos.zarr")
    write_lerobot(tmp_path / "demos.zarr", tmp_path / "ds")
    info = json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())
    table = episodes_table(tmp_path / "ds")
    wanted = {f"stats/{name}/{stat}" for name in info["features"] for stat in STAT_NAMES}
    assert wanted == {c for c in table if c.startswith("stats/")}
    ends = source.episode_ends
    action = source.load(["action"])["action"][ends[0] : ends[1]].astype(np.float64)
    np.testing.assert_allclose(table["stats/action/mean"][1], action.mean(0))
    np.testing.assert_allclose(table["stats/action/std"][1], action.std(0))
    np.testing.assert_allclose(table["stats/action/q50"][1], np.median(action, 0))
    np.testing.assert_allclose(table["stats/action/min"][1], action.min(0), rtol=1e-6)
    assert table["stats/action/count"] == [[7], [3], [12]]
    assert table["stats/frame_index/max"] == [[6], [2], [11]]
    top = np.asarray(table["stats/observation.images.top/mean"][2])
    assert top.shape == (3, 1, 1) and 0 < top.min() and top.max() < 1
    stats = json.loads((tmp_path / "ds" / "meta" / "stats.json").read_text())
    everything = source.load(["action"])["action"].astype(np.float64)
    for key, q in zip(QUANTILE_KEYS, (0.01, 0.10, 0.50, 0.90, 0.99), strict=True):
        np.testing.assert_allclose(stats["action"][key], np.quantile(everything, q, axis=0))
    assert set(stats) == set(info["features"])


def test_image_stats_aggregate_to_the_stats_of_all_frames():
    frames = [smooth_frames(n, seed) for n, seed in ((5, 0), (8, 40), (3, 90))]
    pooled = aggregate([image_stats(f) for f in frames])
    direct = image_stats(np.concatenate(frames))
    for key in ("min", "max", "mean", "std"):
        np.testing.assert_allclose(pooled[key], direct[key], atol=1e-12)
    assert pooled["count"].tolist() == [16] and pooled["q50"].shape == (3, 1, 1)


def test_the_executed_action_is_not_a_second_action(tmp_path, capsys):
    store_with_executed_action(tmp_path / "a.zarr")
    argv = ["data", "convert", str(tmp_path / "a.zarr"), str(tmp_path / "ds"), "--to", "lerobot"]
    assert main(argv) == 0
    assert "left out: action_executed" in capsys.readouterr().out
    features = json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())["features"]
    assert [name for name in features if name.startswith("action")] == ["action"]
    assert "executed_action" not in features
    assert main([*argv[:-3], str(tmp_path / "kept"), "--to", "lerobot",
                 "--keep-executed-action"]) == 0  # fmt: skip
    features = json.loads((tmp_path / "kept" / "meta" / "info.json").read_text())["features"]
    assert [name for name in features if name.startswith("action")] == ["action"]
    assert "executed_action" in features
    convert_lerobot(tmp_path / "kept", tmp_path / "back.zarr",
                    keys=["observation.state", "action", "executed_action"])  # fmt: skip
    back = ReplayBuffer.open(tmp_path / "back.zarr").load(["action", "action_executed"])
    np.testing.assert_array_equal(back["action_executed"], back["action"] + 1)
