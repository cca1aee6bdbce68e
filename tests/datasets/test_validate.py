"""Every bad input gets one clear sentence (exit code 2 from the CLI) and nothing is written."""

import json

import numpy as np
import pytest
import zarr

from dopr_robot.cli import main
from dopr_robot.datasets import ReplayBuffer, SequenceDataset, validate_store
from dopr_robot.errors import DataError

from .conftest import make_store


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _object_array(path, root) -> None:
    """zarr 2 metadata of a pickled-object array, as written by zarr 2."""
    (path / "data" / "obj").mkdir()
    meta = {
        "zarr_format": 2,
        "shape": [16],
        "chunks": [16],
        "dtype": "|O",
        "compressor": None,
        "fill_value": None,
        "filters": [{"id": "pickle"}],
        "order": "C",
    }
    (path / "data" / "obj" / ".zarray").write_text(json.dumps(meta))


def _cut_chunk(path, root) -> None:
    chunk = next(p for p in (path / "data" / "action").rglob("0") if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:10])


def _set(key, index, value):
    def change(path, root) -> None:
        root[key][index] = value

    return change


#: how each case damages a store (path, its zarr root)
BREAKERS = {
    "no data group": lambda path, root: root.__delitem__("data"),
    "no episode_ends": lambda path, root: root.__delitem__("meta/episode_ends"),
    "non-increasing ends": _set("meta/episode_ends", 1, 3),
    "ends past the data": _set("meta/episode_ends", 2, 40),
    "different lengths": lambda path, root: root["data/state"].resize((10, 3)),
    "nan": _set("data/state", (6, 1), np.nan),
    "inf": _set("data/action", (0, 0), np.inf),
    "empty": lambda path, root: root["meta/episode_ends"].resize((0,)),
    "string dtype": lambda path, root: root["data"].create_array("name", shape=(16,), dtype=str),
    "object dtype": _object_array,
    "corrupt chunk": _cut_chunk,
}


def break_store(path, how):
    BREAKERS[how](path, zarr.open_group(path, mode="a"))


CASES = {
    "no data group": "no 'data/' group",
    "no episode_ends": "no 'meta/episode_ends'",
    "non-increasing ends": "not strictly increasing",
    "ends past the data": "has 16 steps but meta/episode_ends ends at 40",
    "different lengths": "arrays of different lengths",
    "nan": "NaN or Inf (first at step 6)",
    "inf": "NaN or Inf (first at step 0)",
    "empty": "holds no episodes",
    "string dtype": "refused",
    "object dtype": "nothing is ever unpickled",
    "corrupt chunk": "cannot be read",
}


@pytest.mark.parametrize("how", list(CASES))
def test_bad_store_is_one_sentence_exit_2_and_untouched(tmp_path, capsys, how, tree_digest):
    path = tmp_path / "demos.zarr"
    make_store(path, zarr_format=2 if how == "object dtype" else 3)
    break_store(path, how)
    before = tree_digest(path)
    code, out, err = run_cli(capsys, "data", "validate", str(path))
    assert code == 2
    assert CASES[how] in out + err
    assert "Traceback" not in out + err
    lines = [line for line in (out + err).splitlines() if line]
    assert all(line.startswith("dopr-robot: error: ") for line in lines), lines
    assert tree_digest(path) == before


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("hello"), "not a zarr store"),
        (lambda p: p.mkdir(), "not a zarr store"),
        (lambda p: p.with_suffix(".zip") and p.write_bytes(b"PK\x03\x04" + b"\0" * 20), None),
    ],
    ids=["missing", "text file", "empty dir", "truncated zip"],
)
def test_paths_that_are_not_stores(tmp_path, capsys, make, expected):
    path = tmp_path / ("demos.zarr.zip" if expected is None else "demos.zarr")
    make(path)
    code, out, err = run_cli(capsys, "data", "info", str(path))
    assert code == 2 and "Traceback" not in err
    assert (expected or "not a readable zip") in err
    assert len(err.strip().splitlines()) == 1


def test_truncated_zip_store(tmp_path, capsys):
    from dopr_robot.datasets.store import zip_directory

    make_store(tmp_path / "demos.zarr")
    zipped = tmp_path / "demos.zarr.zip"
    zip_directory(tmp_path / "demos.zarr", zipped)
    zipped.write_bytes(zipped.read_bytes()[:-200])
    code, _, err = run_cli(capsys, "data", "validate", str(zipped))
    assert code == 2 and "not a readable zip" in err


def test_hdf5_given_to_info_says_convert_first(tmp_path, capsys):
    import h5py

    with h5py.File(tmp_path / "demo.hdf5", "w") as file:
        file.create_group("data")
    code, _, err = run_cli(capsys, "data", "info", str(tmp_path / "demo.hdf5"))
    assert code == 2 and "convert it first" in err


def test_valid_store_passes_and_info_prints_everything(tmp_path, capsys):
    path = tmp_path / "demos.zarr"
    make_store(path, env_id="dopr_robot/Reach-v0", task_horizon=4, seed=3)
    assert validate_store(ReplayBuffer.open(path)) == []
    code, out, _ = run_cli(capsys, "data", "validate", str(path))
    assert code == 0 and "valid (3 episodes, 16 steps)" in out
    code, out, _ = run_cli(capsys, "data", "info", str(path))
    assert code == 0
    assert "episodes: 3   steps: 16" in out
    assert "action" in out and "(2,)" in out and "float32" in out and "max 2003" in out
    assert "env_id: dopr_robot/Reach-v0" in out and "task_horizon: 4" in out


def test_missing_key_and_too_long_horizon(tmp_path):
    path = tmp_path / "demos.zarr"
    make_store(path)
    with pytest.raises(DataError, match="no key 'image'.*available: action, state"):
        SequenceDataset(path, obs_keys=["image"])
    with pytest.raises(DataError, match="non-empty list of indices below 3"):
        SequenceDataset(path, obs_keys=["state"], pred_horizon=2, action_horizon=1, episodes=[3])
    with pytest.raises(DataError, match="no episode .* long enough .* the longest has 7 steps"):
        SequenceDataset(path, obs_keys=["state"], pred_horizon=20, obs_horizon=1, action_horizon=1)
