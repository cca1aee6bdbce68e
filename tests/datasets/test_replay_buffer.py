"""ReplayBuffer: layout, formats 2 and 3, zip stores, appends, and crash safety."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from numcodecs import Blosc

from dopr_robot.datasets import ReplayBuffer, validate_store
from dopr_robot.datasets.store import zip_directory
from dopr_robot.errors import DataError

from .conftest import episode, make_store


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_round_trip(tmp_path, zarr_format):
    path = tmp_path / "demos.zarr"
    make_store(path, zarr_format=zarr_format, env_id="dopr_robot/Reach-v0", task_horizon=2)
    buffer = ReplayBuffer.open(path)
    assert buffer.zarr_format == zarr_format
    assert buffer.n_episodes == 3 and buffer.n_steps == 16
    assert list(buffer.episode_ends) == [5, 12, 16]
    assert list(buffer.episode_lengths) == [5, 7, 4]
    assert buffer.keys == {"action": ((2,), np.float32), "state": ((3,), np.float32)}
    assert buffer.attrs["env_id"] == "dopr_robot/Reach-v0" and buffer.attrs["task_horizon"] == 2
    assert buffer.attrs["created_by"].startswith("dopr-robot ")
    np.testing.assert_array_equal(buffer.get_episode(1)["action"], episode(1, 7)["action"])
    np.testing.assert_array_equal(buffer.get_episode(-1)["state"], episode(2, 4)["state"])
    loaded = buffer.load(["state"])
    assert loaded["state"].shape == (16, 3) and set(loaded) == {"state"}


def test_layout_matches_diffusion_policy(tmp_path):
    path = tmp_path / "demos.zarr"
    make_store(path)
    root = zarr.open_group(path, mode="r")
    assert root["meta/episode_ends"].dtype == np.int64
    assert root["data/action"].shape == (16, 2)


def test_format2_store_written_by_zarr2_style_blosc_is_read_and_stays_format2(tmp_path):
    """A store as diffusion_policy writes it: zarr format 2, Blosc lz4, chunks along time."""
    path = tmp_path / "dp.zarr"
    root = zarr.open_group(path, mode="w", zarr_format=2)
    blosc = Blosc(cname="lz4", clevel=5, shuffle=Blosc.NOSHUFFLE)
    actions = np.random.default_rng(0).normal(size=(9, 2)).astype(np.float32)
    root.create_group("data").create_array("action", data=actions, chunks=(4, 2), compressors=blosc)
    root.create_group("meta").create_array("episode_ends", data=np.array([4, 9], dtype=np.int64))
    meta = json.loads((path / "data" / "action" / ".zarray").read_text())
    assert meta["compressor"]["id"] == "blosc"
    buffer = ReplayBuffer.open(path, mode="a")
    np.testing.assert_array_equal(buffer.get_episode(1)["action"], actions[4:])
    buffer.add_episode({"action": np.ones((3, 2), np.float32)})
    assert (path / "meta" / "episode_ends" / ".zarray").exists()
    assert not (path / "zarr.json").exists()
    assert list(ReplayBuffer.open(path).episode_ends) == [4, 9, 12]


def test_zip_store_is_read_but_not_appended(tmp_path):
    make_store(tmp_path / "demos.zarr", zarr_format=2)
    zipped = tmp_path / "demos.zarr.zip"
    zip_directory(tmp_path / "demos.zarr", zipped)
    buffer = ReplayBuffer.open(zipped)
    assert buffer.n_episodes == 3
    np.testing.assert_array_equal(buffer.get_episode(2)["action"], episode(2, 4)["action"])
    with pytest.raises(DataError, match="read-only"):
        ReplayBuffer.open(zipped, mode="a")


def test_append_refuses_mismatched_episodes_without_writing(tmp_path):
    buffer = make_store(tmp_path / "demos.zarr")
    bad = [
        {"action": np.zeros((3, 2), np.float32)},  # missing key
        {**episode(3, 3), "state": np.zeros((3, 4), np.float32)},  # wrong per-step shape
        {**episode(3, 3), "state": np.zeros((2, 3), np.float32)},  # unequal lengths
        {**episode(3, 3), "state": np.array([["a"] * 3] * 3)},  # strings
    ]
    for item in bad:
        with pytest.raises(DataError):
            buffer.add_episode(item)
    reopened = ReplayBuffer.open(tmp_path / "demos.zarr")
    assert reopened.n_steps == 16 and validate_store(reopened) == []
    assert zarr.open_group(tmp_path / "demos.zarr")["data/state"].shape[0] == 16


def test_create_refuses_an_existing_path(tmp_path):
    make_store(tmp_path / "demos.zarr")
    with pytest.raises(DataError, match="already exists"):
        ReplayBuffer.create(tmp_path / "demos.zarr")


def test_interrupted_before_commit_keeps_completed_episodes(tmp_path, monkeypatch):
    """Rows written but episode_ends not advanced: ignored, then overwritten by the next append."""
    buffer = make_store(tmp_path / "demos.zarr")
    array_type = type(buffer.root["meta/episode_ends"])
    resize = array_type.resize

    def crash_on_commit(array, shape):
        if array.path.endswith("episode_ends"):
            raise KeyboardInterrupt  # killed just before the commit point
        return resize(array, shape)

    monkeypatch.setattr(array_type, "resize", crash_on_commit)
    with pytest.raises(KeyboardInterrupt):
        buffer.add_episode(episode(3, 6))
    monkeypatch.undo()
    reopened = ReplayBuffer.open(tmp_path / "demos.zarr", mode="a")
    assert reopened.n_episodes == 3 and validate_store(reopened) == []
    assert reopened.root["data/action"].shape[0] == 22  # the uncommitted rows are still there
    reopened.add_episode(episode(9, 2))
    np.testing.assert_array_equal(reopened.get_episode(3)["action"], episode(9, 2)["action"])


def test_interrupted_between_resize_and_write_of_episode_ends(tmp_path):
    """episode_ends grew but its new entry still holds the fill value: not a committed episode."""
    buffer = make_store(tmp_path / "demos.zarr")
    ends = buffer.root["meta/episode_ends"]
    ends.resize((4,))  # what a kill right after the metadata write leaves
    reopened = ReplayBuffer.open(tmp_path / "demos.zarr", mode="a")
    assert reopened.n_episodes == 3 and validate_store(reopened) == []
    reopened.add_episode(episode(3, 2))
    assert list(ReplayBuffer.open(tmp_path / "demos.zarr").episode_ends) == [5, 12, 16, 18]


WRITER = """
import sys, numpy as np
from dopr_robot.datasets import ReplayBuffer
buffer = ReplayBuffer.create(sys.argv[1])
i = 0
while True:  # big episodes, so a kill usually lands mid-append
    n = 40000 + 7 * i
    buffer.add_episode({"action": np.full((n, 16), i, np.float32),
                        "state": np.full((n, 8), -i, np.float64)})
    i += 1
"""


@pytest.mark.parametrize("delay", [0.0, 0.13, 0.37])
def test_sigkill_mid_append_leaves_every_completed_episode(tmp_path, delay):
    path = tmp_path / "demos.zarr"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _committed(path) >= 2:
                break
            time.sleep(0.05)
        time.sleep(delay)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    buffer = ReplayBuffer.open(path, mode="a")  # also sweeps the killed writer's temp files
    assert not list(path.rglob("*.partial"))
    assert buffer.n_episodes >= 2
    assert validate_store(buffer) == []
    for i in range(buffer.n_episodes):
        data = buffer.get_episode(i)
        assert len(data["action"]) == 40000 + 7 * i
        assert (data["action"] == i).all() and (data["state"] == -i).all()
    completed = buffer.n_episodes
    buffer.add_episode({"action": np.zeros((3, 16), np.float32), "state": np.zeros((3, 8))})
    assert ReplayBuffer.open(path).n_episodes == completed + 1


def _committed(path) -> int:
    try:
        return ReplayBuffer.open(path).n_episodes
    except DataError:  # not created yet
        return 0


def test_first_append_interrupted_after_creating_arrays(tmp_path):
    """Arrays created but still empty (killed during the very first append): the next append
    uses them instead of failing to create them again."""
    buffer = ReplayBuffer.create(tmp_path / "demos.zarr")
    buffer.root["data"].create_array("action", shape=(0, 2), dtype="float32")
    buffer.root["data"].create_array("state", shape=(0, 3), dtype="float32")
    buffer = ReplayBuffer.open(tmp_path / "demos.zarr", mode="a")
    assert buffer.n_episodes == 0
    buffer.add_episode(episode(0, 4))
    np.testing.assert_array_equal(buffer.get_episode(0)["state"], episode(0, 4)["state"])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_missing_chunk_file_is_one_sentence_naming_it(tmp_path, zarr_format):
    """zarr would read a deleted chunk as zeros; the store names the file instead. A chunk that
    holds only the fill value is still written, so its absence always means damage."""
    path = tmp_path / "demos.zarr"
    buffer = ReplayBuffer.create(path, zarr_format=zarr_format)
    zeros = {"state": np.zeros((5, 3), np.float32), "action": np.zeros((5, 2), np.float32)}
    buffer.add_episode(zeros)
    reopened = ReplayBuffer.open(path)
    np.testing.assert_array_equal(reopened.load()["state"], zeros["state"])  # nothing missing
    chunk = next(p for p in (path / "data" / "action").rglob("*") if p.is_file()
                 and not p.name.startswith((".z", "zarr.json")))  # fmt: skip
    chunk.unlink()
    name = chunk.relative_to(path / "data" / "action").as_posix()
    with pytest.raises(DataError, match=rf"data/action/{name} is missing .* incomplete"):
        ReplayBuffer.open(path).load(["action"])
    assert set(ReplayBuffer.open(path).load(["state"])) == {"state"}  # the rest still reads
