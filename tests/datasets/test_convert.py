"""Converters: robomimic HDF5 → zarr and zarr format 2 → 3, via the API and the CLI."""

import json

import h5py
import numpy as np
import pytest

from dopr_robot.cli import main
from dopr_robot.datasets import ReplayBuffer, convert_robomimic, convert_zarr
from dopr_robot.errors import DataError

from .conftest import make_store, train_two_steps

N_DEMOS = 12  # demo_10 and demo_11 sort before demo_2 as strings
ENV_ARGS = {  # what robomimic writes: the eval env is rebuilt from this
    "env_name": "Lift",
    "env_version": "1.4.1",
    "type": 1,
    "env_kwargs": {
        "control_freq": 20,
        "robots": ["Panda"],
        "controller_configs": {"type": "OSC_POSE", "control_delta": True, "kp": 150},
        "camera_names": ["agentview"],
    },
}


def robomimic_file(path):
    """A file in robomimic's layout, built with h5py: data/demo_<i> with actions and obs."""
    with h5py.File(path, "w") as file:
        data = file.create_group("data")
        data.attrs["total"] = 0
        data.attrs["env_args"] = json.dumps(ENV_ARGS)
        for i in range(N_DEMOS):
            n = 5 + i
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = n
            demo["actions"] = np.full((n, 7), i, dtype=np.float64)
            demo["actions_abs"] = np.full((n, 7), 100 + i, dtype=np.float64)
            demo["obs/robot0_eef_pos"] = np.full((n, 3), -i, dtype=np.float64)
            demo["obs/object"] = np.arange(n * 10, dtype=np.float64).reshape(n, 10)
            demo["obs/agentview_image"] = np.full((n, 8, 8, 3), i, dtype=np.uint8)
            demo["rewards"] = np.zeros(n)
            demo["dones"] = np.zeros(n)
        valid = [f"demo_{i}".encode() for i in (1, 10)]
        train = [f"demo_{i}".encode() for i in range(N_DEMOS) if i not in (1, 10)]
        file["mask/train"] = np.array(train)
        file["mask/valid"] = np.array(valid)
    return path


def test_robomimic_demos_in_integer_order_with_low_dim_keys(tmp_path):
    source = robomimic_file(tmp_path / "lift.hdf5")
    convert_robomimic(source, tmp_path / "lift.zarr")
    buffer = ReplayBuffer.open(tmp_path / "lift.zarr")
    assert buffer.n_episodes == N_DEMOS
    assert list(buffer.episode_lengths) == [5 + i for i in range(N_DEMOS)]
    assert set(buffer.keys) == {"action", "robot0_eef_pos", "object"}  # images opt-in by name
    for i in range(N_DEMOS):
        assert (buffer.get_episode(i)["action"] == i).all()
    attrs = buffer.attrs
    assert attrs["env_args"]["env_name"] == "Lift"
    assert attrs["masks"]["valid"] == [1, 10]
    assert attrs["demos"][:3] == ["demo_0", "demo_1", "demo_2"]


def test_robomimic_filter_and_chosen_keys(tmp_path):
    source = robomimic_file(tmp_path / "lift.hdf5")
    convert_robomimic(
        source, tmp_path / "valid.zarr", obs_keys=["agentview_image"], filter_key="valid"
    )
    buffer = ReplayBuffer.open(tmp_path / "valid.zarr")
    assert buffer.n_episodes == 2
    assert buffer.keys["agentview_image"] == ((8, 8, 3), np.uint8)
    assert (buffer.get_episode(1)["action"] == 10).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(obs_keys=["gripper"]), "no obs key 'gripper'"),
        (dict(filter_key="test"), "no mask/test .*train, valid"),
    ],
)
def test_robomimic_bad_requests_write_nothing(tmp_path, kwargs, message):
    source = robomimic_file(tmp_path / "lift.hdf5")
    with pytest.raises(DataError, match=message):
        convert_robomimic(source, tmp_path / "out.zarr", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lift.hdf5"]


def test_truncated_hdf5_is_one_sentence(tmp_path, capsys):
    source = robomimic_file(tmp_path / "lift.hdf5")
    source.write_bytes(source.read_bytes()[:3000])
    code = main(["data", "convert", str(source), str(tmp_path / "out.zarr")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize("suffix", [".zarr", ".zarr.zip"])
def test_zarr2_to_zarr3_copy_is_equal(tmp_path, suffix):
    make_store(tmp_path / "dp.zarr", zarr_format=2, env_id="x")
    target = tmp_path / f"copy{suffix}"
    convert_zarr(tmp_path / "dp.zarr", target)
    source, copy = ReplayBuffer.open(tmp_path / "dp.zarr"), ReplayBuffer.open(target)
    assert copy.zarr_format == 3 and copy.attrs["env_id"] == "x"
    assert np.array_equal(copy.episode_ends, source.episode_ends)
    for key, array in source.load().items():
        np.testing.assert_array_equal(copy.load([key])[key], array)


def test_cli_refuses_to_overwrite_and_replaces_only_when_asked(tmp_path, capsys):
    make_store(tmp_path / "a.zarr", lengths=(3, 4))
    make_store(tmp_path / "b.zarr", lengths=(9,))
    code = main(["data", "convert", str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")])
    assert code == 2 and "already exists; pass --overwrite" in capsys.readouterr().err
    assert ReplayBuffer.open(tmp_path / "b.zarr").n_episodes == 1  # untouched
    code = main(
        ["data", "convert", str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr"), "--overwrite"]
    )
    assert code == 0 and "2 episodes, 7 steps" in capsys.readouterr().out
    assert ReplayBuffer.open(tmp_path / "b.zarr").n_episodes == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr", "b.zarr"]  # no leftovers


def test_failed_overwrite_keeps_the_old_output(tmp_path, capsys):
    source = robomimic_file(tmp_path / "lift.hdf5")
    make_store(tmp_path / "out.zarr", lengths=(9,))
    code = main(
        [
            "data",
            "convert",
            str(source),
            str(tmp_path / "out.zarr"),
            "--obs-keys",
            "nope",
            "--overwrite",
        ]
    )
    assert code == 2 and "no obs key 'nope'" in capsys.readouterr().err
    assert ReplayBuffer.open(tmp_path / "out.zarr").n_episodes == 1


def test_robomimic_env_args_absolute_actions_and_key_mapping(tmp_path, capsys):
    source = robomimic_file(tmp_path / "lift.hdf5")
    assert main(["data", "convert", str(source), str(tmp_path / "abs.zarr"), "--action-key",
                 "actions_abs", "--obs-keys", "agentview_image,robot0_eef_pos"]) == 0  # fmt: skip
    buffer = ReplayBuffer.open(tmp_path / "abs.zarr")
    assert (buffer.get_episode(3)["action"] == 103).all()
    attrs = buffer.attrs
    assert attrs["env_args"] == ENV_ARGS  # kept whole, controller config included
    assert attrs["key_mapping"] == {
        "action": "actions_abs",
        "agentview_image": "obs/agentview_image",
        "robot0_eef_pos": "obs/robot0_eef_pos",
    }
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "abs.zarr")]) == 0
    out = capsys.readouterr().out
    assert "source format: robomimic" in out
    assert "action                   <- actions_abs" in out
    with pytest.raises(DataError, match="no data/demo_0/actions_rel .*actions, actions_abs"):
        convert_robomimic(source, tmp_path / "x.zarr", action_key="actions_rel")
    assert not (tmp_path / "x.zarr").exists()


def test_a_converted_robomimic_file_trains(tmp_path, capsys):
    source = robomimic_file(tmp_path / "lift.hdf5")
    assert main(["data", "convert", str(source), str(tmp_path / "lift.zarr"), "--obs-keys",
                 "robot0_eef_pos,object,agentview_image", "--filter", "train"]) == 0  # fmt: skip
    argv = train_two_steps(
        tmp_path / "lift.zarr", tmp_path / "run", "robot0_eef_pos,object,agentview_image"
    )
    assert main(argv) == 0
    assert "2 steps" in capsys.readouterr().out


def test_robomimic_flags_on_other_sources_are_one_sentence(tmp_path, capsys):
    make_store(tmp_path / "demos.zarr")
    for flags in (["--action-key", "actions_abs"], ["--filter", "train", "--to", "lerobot"]):
        out = tmp_path / "out"
        assert main(["data", "convert", str(tmp_path / "demos.zarr"), str(out), *flags]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and "apply to robomimic HDF5 input only" in error
        assert not out.exists()
