"""A corpus of bad configs and flags: each is one sentence on stderr, exit code 2, and nothing
written (the run / study / eval directory is not created, no file changes)."""

from __future__ import annotations

import numpy as np
import pytest

from dopr_robot.cli import main
from dopr_robot.datasets import ReplayBuffer
from dopr_robot.study.config import preset_path

QUICK = preset_path("quick").read_text()

# (file contents or None, extra flags, a phrase the sentence must contain)
TRAIN_CASES = [
    (
        '[train]\nsteps = "ten"\n',
        [],
        "steps = 'ten' is not valid (input should be a valid integer)",
    ),
    ("[train]\nsteps = 1.5\n", [], "steps = 1.5 is not valid"),
    ("[train]\nsteps = 0\n", [], "greater than or equal to 1"),
    ("[train]\nval_batches = 0\n", [], "val_batches = 0 is not valid"),
    ("[train]\nlr = [1, 2]\n", [], "lr = [1, 2] is not valid (input should be a valid number)"),
    ("[train]\nlr = true\n", [], "lr = True is not valid"),
    ("[train]\nlr = -0.1\n", [], "greater than 0"),
    ("[train]\nlr = nan\n", [], "lr = nan is not valid"),
    ("[train]\nsteps = { a = 1 }\n", [], "steps = {'a': 1} is not valid"),
    ("[train]\nema_decay = 1.0\n", [], "less than 1"),
    ("[train]\nval_ratio = 0\n", [], "val_ratio = 0 is not valid"),
    ('[train]\ndevice = "tpu"\n', [], "device = 'tpu' is not valid"),
    ('[train]\noptimizer = "adam"\n', [], "optimizer = 'adam' is not valid"),
    ("[train]\noptimizer_kwargs = { gamma = 0.1 }\n", [], "only apply to dopr"),
    ("[train]\nlearning_rate = 1e-3\n", [], "unknown key 'learning_rate'"),
    ('[policy]\nmlp_width = "wide"\n', [], "mlp_width = 'wide' is not valid"),
    ('[policy]\nkind = "vae"\n', [], "kind = 'vae' is not valid"),
    ("[policy]\nobs_keys = []\n", [], "obs_keys = [] is not valid"),
    ("[policy]\npred_horizon = 4\naction_horizon = 8\n", [], "must not exceed pred_horizon"),
    ("[policy]\ncrop_fraction = 2.0\n", [], "crop_fraction = 2.0 is not valid"),
    ('[policy]\nimage_norm = "layer"\n', [], "image_norm = 'layer' is not valid"),
    ("[trian]\nsteps = 3\n", [], "unknown table(s) ['trian']"),
    ("steps = 3\n", [], "unknown table(s) ['steps']"),
    ("train = 3\n", [], "train must be a [train] table"),
    ("", [], "is empty"),
    ("[train\nsteps = 3\n", [], "is not valid TOML"),
    (b"[train]\nsteps = 3 # \xff\xfe\n", [], "is not UTF-8 text"),
    (None, ["--steps", "ten"], "steps = 'ten' is not valid"),
    (None, ["--lr", "fast"], "lr = 'fast' is not valid"),
    (None, ["--batch-size", "0"], "batch_size = 0 is not valid"),
    (None, ["--optimizer-kwargs", "{gamma = -1.0}"], "gamma"),
    (None, ["--mlp-depth", "2.5"], "mlp_depth = 2.5 is not valid"),
    (None, ["--obs-keys", ""], "obs_keys = [] is not valid"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "store.zarr"
    buffer = ReplayBuffer.create(path)
    for episode in range(4):
        steps = np.arange(12, dtype=np.float32)[:, None] + 100 * episode
        buffer.add_episode({"state": np.repeat(steps, 3, 1), "action": np.repeat(steps, 2, 1)})
    return path


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("contents, flags, phrase", TRAIN_CASES)
def test_bad_train_config_or_flag(store, tmp_path, capsys, contents, flags, phrase):
    argv = ["train", "--data", str(store), "--out", str(tmp_path / "run"), "--quiet", *flags]
    if contents is not None:
        config = tmp_path / "bad.toml"
        config.write_bytes(contents if isinstance(contents, bytes) else contents.encode())
        argv += ["--config", str(config)]
    before = _listing(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("dopr-robot: error: "), error
    assert phrase in error, error
    assert "Traceback" not in error
    assert _listing(tmp_path) == before  # no run directory, nothing else


STUDY_CASES = [
    ("verdict_seeds = 2", 'verdict_seeds = "two"', "verdict_seeds = 'two' is not valid"),
    ("verdict_seeds = 2", "verdict_seeds = 1", "verdict_seeds = 1 is not valid"),
    ("verdict_seeds = 2", "seeds = 2", "'seeds' was split into tuning_seeds"),
    ("budget = [0.5, 1.0]", "budget = [1.0, 0.5]", "budget fractions must be increasing"),
    ("workers = 2", "workers = 1.5", "workers = 1.5 is not valid"),
    ("videos = true", "videos = 1", "videos = 1 is not valid"),
    ("demos = 10", "demos = -1", "tasks.0.demos = -1 is not valid"),
    ("horizons = [20, 60]", "horizons = [60, 20]", "horizons must be increasing"),
    ("horizons = [20, 60]", 'horizons = "20"', "tasks.0.horizons = '20' is not valid"),
    ("execute = 1", "execute = 9", "execute must be in 1..Ta=4"),
    ("execute = 1", 'execute = "none"\ncolour = 3', "unknown key 'tasks.0.colour'"),
    ("steps = 300", "steps = 2.5", "steps = 2.5 is not valid"),
    ("[policy]\n", "[policy]\nwidth = 3\n", "unknown key 'width'"),
    ("lr = [1e-3]", "lr = []", "at least 1 item"),
    ('pairs = [["adamw", "dopr-adamw"]]', 'pairs = [["adamw", "nadam"]]', "must name two"),
]


@pytest.mark.parametrize("old, new, phrase", STUDY_CASES)
def test_bad_study_config(tmp_path, capsys, old, new, phrase):
    assert old in QUICK
    config = tmp_path / "study.toml"
    config.write_text(QUICK.replace(old, new, 1))
    before = _listing(tmp_path)
    assert main(["study", "--config", str(config), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and phrase in error, error
    assert _listing(tmp_path) == before


@pytest.mark.parametrize(
    "flags, phrase",
    [
        (["--episodes", "0"], "--episodes = 0 is not valid"),
        (["--n-envs", "0"], "--n-envs = 0 is not valid"),
        (["--perturbation", "-1"], "--perturbation = -1.0 is not valid"),
        (["--device", "gpu"], "--device = 'gpu' is not valid"),
        (["--execute", "0"], "--execute = 0 is not valid"),
    ],
)
def test_bad_eval_flags(tmp_path, capsys, flags, phrase):
    before = _listing(tmp_path)
    assert main(["eval", "--ckpt", str(tmp_path / "run"), "--quiet", *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and phrase in error, error
    assert _listing(tmp_path) == before


@pytest.mark.parametrize(
    "flags, phrase",
    [
        (["--device", "gpu"], "bad flag: --device = 'gpu' is not valid"),
        (["--workers", "0"], "bad flag: --workers = 0 is not valid"),
        (["--preset", "quick", "--readme", "missing.md"], "does not exist"),
        (["--preset", "quick", "--address", "10.0.0.1:6379"], "--address is for --backend ray"),
    ],
)
def test_bad_study_flags(tmp_path, capsys, flags, phrase):
    before = _listing(tmp_path)
    assert main(["study", "--out", str(tmp_path / "s"), "--quiet", *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and phrase in error, error
    assert _listing(tmp_path) == before
