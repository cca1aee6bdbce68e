"""The `dopr-robot` entry point: help lists what exists; bad input is one sentence, exit 2."""

import subprocess
import sys

import numpy as np
import pytest

from dopr_robot.cli import main


def test_help_lists_the_subcommands(capsys):
    try:
        main(["--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert "optim" in capsys.readouterr().out


def test_optim_list_and_describe(capsys):
    assert main(["optim", "list"]) == 0
    assert "dopr-muon" in capsys.readouterr().out
    assert main(["optim", "describe", "--net", "unet", "--optimizer", "dopr-muon"]) == 0
    out = capsys.readouterr().out
    assert "ConditionalUnet1D" in out and "Conv1d  factor" in out and "transposed" in out


def test_unknown_optimizer_is_one_sentence_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "dopr_robot.cli", "optim", "describe", "--optimizer", "adam"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dopr-robot: error: unknown optimizer: 'adam' (expected one of adamw, muon, sgd, "
        "dopr-adamw, dopr-muon, dopr-sgd)"
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv", [["optim", "list"], ["--help"], ["data", "info", "STORE"]], ids=lambda a: a[0]
)
def test_a_closed_stdout_is_not_a_traceback(tmp_path, argv):
    """`dopr-robot data info X | head`: the reader goes away before the output is written."""
    from dopr_robot.datasets import ReplayBuffer

    store = tmp_path / "demos.zarr"
    buffer = ReplayBuffer.create(store)
    buffer.add_episode({"action": np.zeros((3, 2), np.float32)})
    argv = [str(store) if a == "STORE" else a for a in argv]
    process = subprocess.Popen([sys.executable, "-m", "dopr_robot.cli", *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    process.stdout.close()  # the pipe's reader is gone before anything is written
    error = process.stderr.read().decode()
    assert process.wait() in (0, 141), error  # 141: as if ended by SIGPIPE; argparse exits 0
    assert "Traceback" not in error and "BrokenPipeError" not in error, error
