"""diffusion_policy's stores as published: JPEG 2000 image arrays (imagecodecs' numcodecs codec,
level 50), Blosc low-dim arrays, zarr format 2, zipped, with episodes shorter than Tp."""

from __future__ import annotations

import json

import numcodecs
import numpy as np
import pytest
import zarr

from dopr_robot.cli import main
from dopr_robot.datasets import ReplayBuffer, SequenceDataset
from dopr_robot.datasets.store import zip_directory
from dopr_robot.errors import DataError

from .conftest import train_two_steps

Jpeg2k = pytest.importorskip("imagecodecs.numcodecs").Jpeg2k  # the `formats` extra


def write_dp_image_store(path, lengths=(6, 3, 9)):
    """A store laid out and compressed the way diffusion_policy's robomimic image datasets are."""
    rng = np.random.default_rng(0)
    steps = sum(lengths)
    yy, xx = np.mgrid[0:32, 0:32]
    smooth = np.stack([(xx * 4 + t) % 256 for t in range(steps)])  # compresses like a photo
    images = np.repeat(smooth[..., None], 3, axis=-1).astype(np.uint8)
    root = zarr.open_group(path, mode="w", zarr_format=2)
    blosc = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE)
    root.create_array(
        "data/agentview_image", shape=images.shape, chunks=(1, 32, 32, 3), dtype="uint8",
        compressors=Jpeg2k(level=50),
    )[:] = images  # fmt: skip
    for key, width in (("robot0_eef_pos", 3), ("action", 7)):
        values = rng.normal(size=(steps, width)).astype(np.float32)
        root.create_array(
            f"data/{key}", shape=values.shape, chunks=(steps, width), dtype="float32",
            compressors=blosc,
        )[:] = values  # fmt: skip
    root.create_array("meta/episode_ends", data=np.cumsum(lengths).astype(np.int64))
    return images


def test_a_jpeg2000_image_store_reads_and_trains_windows(tmp_path):
    images = write_dp_image_store(tmp_path / "image.zarr")
    meta = json.loads(
        (tmp_path / "image.zarr" / "data" / "agentview_image" / ".zarray").read_text()
    )
    assert meta["compressor"]["id"] == "imagecodecs_jpeg2k"
    zip_directory(tmp_path / "image.zarr", tmp_path / "image.zarr.zip")
    for path in (tmp_path / "image.zarr", tmp_path / "image.zarr.zip"):
        buffer = ReplayBuffer.open(path)
        assert buffer.zarr_format == 2 and buffer.n_episodes == 3
        decoded = buffer.load(["agentview_image"])["agentview_image"]
        # JPEG 2000 at level 50 is lossy: close to the pixels, not equal to them
        assert np.abs(decoded.astype(int) - images).mean() < 3
        dataset = SequenceDataset(
            buffer, ["agentview_image", "robot0_eef_pos"], pred_horizon=8, obs_horizon=2,
            action_horizon=4,
        )  # fmt: skip
        # episodes of 6 and 3 steps are shorter than Tp = 8 and are padded, not refused
        assert len(dataset) == sum(max(0, n - 8 + 1 + 3 + 1) for n in (6, 3, 9))
        batch = dataset[np.arange(len(dataset))]
        assert batch["obs"]["agentview_image"].shape == (len(dataset), 2, 32, 32, 3)


def test_an_unknown_codec_is_one_sentence(tmp_path, capsys):
    write_dp_image_store(tmp_path / "image.zarr")
    array_meta = tmp_path / "image.zarr" / "data" / "agentview_image" / ".zarray"
    meta = json.loads(array_meta.read_text())
    meta["compressor"] = {"id": "no_such_codec"}
    array_meta.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="codec that is not available"):
        ReplayBuffer.open(tmp_path / "image.zarr")
    assert main(["data", "info", str(tmp_path / "image.zarr")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no_such_codec" in error and "formats" in error


def test_a_dp_image_store_trains(tmp_path, capsys):
    write_dp_image_store(tmp_path / "image.zarr")
    zip_directory(tmp_path / "image.zarr", tmp_path / "image.zarr.zip")
    argv = train_two_steps(
        tmp_path / "image.zarr.zip",
        tmp_path / "run",
        "agentview_image,robot0_eef_pos",
        8,
        4,
        "--val-ratio",
        "0.34",
    )
    assert main(argv) == 0
    assert "2 steps" in capsys.readouterr().out
