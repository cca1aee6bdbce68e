"""The trainer: outputs, checkpoints that load, bitwise resume, DDP = one process, EMA, safety."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from dopr_robot.cli import main
from dopr_robot.envs.collect import collect
from dopr_robot.envs.config import CollectConfig
from dopr_robot.errors import UserError
from dopr_robot.policies import FlowPolicy, PolicyConfig
from dopr_robot.train import EMA, TrainConfig, TrainingDiverged, latest_checkpoint, load_policy
from dopr_robot.train import train as run_training
from dopr_robot.train.checkpoint import load_optimizer_state

from .conftest import POLICY, config


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "balance.zarr"
    settings = CollectConfig(
        env_id="dopr_robot/Balance-v0", task_horizon=60, episodes=6, noise=0.05
    )
    collect(settings, path, progress=False)
    return path


def weights(run) -> bytes:
    return (latest_checkpoint(run) / "model.safetensors").read_bytes()


def test_a_run_writes_checkpoints_metrics_and_a_loadable_policy(store, tmp_path):
    result = run_training(config(store, tmp_path / "run"), POLICY, progress=False)
    run = tmp_path / "run"
    assert result.steps == 6 and result.val_loss is not None and result.val_loss_ema is not None
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step_0000003", "step_0000006"]
    files = sorted(p.name for p in (run / "checkpoints" / "step_0000006").iterdir())
    assert files == [
        "config.json",
        "ema.safetensors",
        "model.safetensors",
        "optimizer.pt",
        "trainer_state.json",
    ]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6]
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 6
    policy = load_policy(run)
    obs = {"state": torch.zeros(2, 2, 9)}
    assert policy.predict_action(obs).shape == (2, 4, 1)


def test_loaded_checkpoint_gives_identical_actions(store, tmp_path):
    from dopr_robot.train import Trainer

    trainer = Trainer(config(store, tmp_path / "run"), POLICY, progress=False)
    trainer.fit()
    obs = {"state": torch.randn(3, 2, 9)}
    live = trainer.policy.eval().predict_action(obs, torch.Generator().manual_seed(0))
    loaded = load_policy(tmp_path / "run", ema=False).predict_action(
        obs, torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(live, loaded, rtol=0, atol=0)
    ema = load_policy(tmp_path / "run", ema=True).predict_action(
        obs, torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(
        trainer.ema.model.predict_action(obs, torch.Generator().manual_seed(0)), ema, rtol=0, atol=0
    )


def test_resume_continues_bitwise(store, tmp_path, monkeypatch):
    from dopr_robot.train import trainer as trainer_module

    run_training(config(store, tmp_path / "whole"), POLICY, progress=False)
    original = trainer_module.Trainer.train_step

    def interrupted(self):
        if self.step == 4:
            raise KeyboardInterrupt  # killed after the step-3 checkpoint
        return original(self)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(config(store, tmp_path / "parts"), POLICY, progress=False)
    monkeypatch.setattr(trainer_module.Trainer, "train_step", original)
    assert latest_checkpoint(tmp_path / "parts").name == "step_0000003"
    run_training(config(store, tmp_path / "parts"), POLICY, resume=True, progress=False)
    for name in ("model.safetensors", "ema.safetensors"):
        a = (latest_checkpoint(tmp_path / "whole") / name).read_bytes()
        b = (latest_checkpoint(tmp_path / "parts") / name).read_bytes()
        assert a == b, name
    losses = [
        [json.loads(line).get("loss") for line in (tmp_path / run / "metrics.jsonl").open()]
        for run in ("whole", "parts")
    ]
    assert losses[0] == losses[1]


def test_same_seed_same_weights_and_other_seed_differs(store, tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_training(config(store, tmp_path / name, seed=seed, steps=3), POLICY, progress=False)
    assert weights(tmp_path / "a") == weights(tmp_path / "b") != weights(tmp_path / "c")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, settings: dict, policy: dict) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    run_training(TrainConfig(**settings), PolicyConfig(**policy), progress=False)


def test_two_gloo_processes_equal_one_process(store, tmp_path):
    settings = config(
        store,
        tmp_path / "ddp",
        optimizer="dopr-adamw",
        optimizer_kwargs={"update_every": 1},  # refresh every step: the all-reduce runs each step
        steps=4,
        checkpoint_every=4,
    )
    mp.spawn(
        _ddp_worker,
        args=(2, _free_port(), settings.to_dict(), POLICY.to_dict()),
        nprocs=2,
        join=True,
    )
    # the one-process run with the workers' one thread: a second thread splits the matmuls'
    # sums differently, and Adam turns that rounding into +-lr steps (the claim is ranks vs one
    # process, not thread counts)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_training(
            settings.model_copy(update={"out": str(tmp_path / "one")}), POLICY, progress=False
        )
    finally:
        torch.set_num_threads(threads)
    from safetensors.torch import load_file

    ddp = load_file(latest_checkpoint(tmp_path / "ddp") / "model.safetensors")
    one = load_file(latest_checkpoint(tmp_path / "one") / "model.safetensors")
    for name, value in one.items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_ema_follows_its_formula():
    live = torch.nn.Linear(3, 2)
    ema = EMA(live, decay=0.9)
    expected = [p.detach().clone() for p in live.parameters()]
    for step in range(5):
        with torch.no_grad():
            for p in live.parameters():
                p.add_(torch.randn_like(p))
        ema.update(live, step)
        decay = min(0.9, (1 + step) / (10 + step))
        live_now = list(live.parameters())
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, live_now, strict=True)]
    for e, a in zip(expected, ema.model.parameters(), strict=True):
        torch.testing.assert_close(a, e)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_in_optimizer_pt_is_refused(store, tmp_path):
    run = tmp_path / "run"
    run_training(config(store, run, steps=3), POLICY, progress=False)
    marker = tmp_path / "pwned"
    with (latest_checkpoint(run) / "optimizer.pt").open("wb") as file:
        pickle.dump({"optimizer": _Exploit(marker)}, file)
    with pytest.raises(UserError, match="was refused"):
        load_optimizer_state(latest_checkpoint(run))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dopr_robot.cli",
            "train",
            "--data",
            str(store),
            "--out",
            str(run),
            "--resume",
            "--quiet",
            "--steps",
            "3",
            "--batch-size",
            "16",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert not marker.exists()


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(store, tmp_path, monkeypatch):
    original = FlowPolicy.loss
    calls = {"n": 0}

    def poisoned(self, cond, actions, noise):
        calls["n"] += 1
        loss, info = original(self, cond, actions, noise)
        return (loss * float("nan"), info) if calls["n"] > 6 else (loss, info)

    monkeypatch.setattr(FlowPolicy, "loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at step \d; .*step_0000003"):
        run_training(config(store, run), POLICY, progress=False)
    assert latest_checkpoint(run).name == "step_0000003"


def cli(*argv):
    return subprocess.run(
        [sys.executable, "-m", "dopr_robot.cli", "train", *argv, "--quiet"],
        capture_output=True,
        text=True,
    )


def test_cli_trains_and_bad_input_is_one_sentence(store, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--data", str(store), "--steps", "3", "--batch-size", "16"]
    ok = cli(*common, "--out", str(out), "--policy", "regression", "--optimizer", "dopr-adamw")
    assert ok.returncode == 0, ok.stderr
    assert "3 steps" in ok.stdout
    toml = tmp_path / "bad.toml"
    toml.write_text("[train]\nlearning_rate = 1\n")
    cases = [
        (["--out", str(out), "--policy", "regression"], "already exists; pass --resume"),
        (
            ["--out", str(out), "--policy", "regression", "--resume", "--lr", "0.5"],
            "other train settings (lr)",
        ),
        (["--out", str(tmp_path / "x"), "--obs-keys", "image"], "has no key(s) ['image']"),
        (["--out", str(tmp_path / "x"), "--optimizer", "adam"], "optimizer = 'adam' is not valid"),
        (["--out", str(tmp_path / "x"), "--config", str(toml)], "unknown key 'learning_rate'"),
        (["--out", str(tmp_path / "x"), "--config", str(tmp_path / "none.toml")], "does not exist"),
    ]
    for extra, message in cases:  # in-process: main() is what the command runs
        assert main(["train", *common, *extra, "--quiet"]) == 2, extra
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (extra, lines)
    assert not (tmp_path / "x").exists()


def test_metrics_after_the_resumed_checkpoint_are_not_duplicated(store, tmp_path):
    import shutil

    run = tmp_path / "run"
    run_training(config(store, run), POLICY, progress=False)
    shutil.rmtree(run / "checkpoints" / "step_0000006")  # as if killed before the last one
    run_training(config(store, run), POLICY, resume=True, progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6]


def test_an_image_policy_trains_end_to_end(tmp_path):
    """Collected 96x96 images -> robomimic encoder -> two training steps -> a loadable policy."""
    store = tmp_path / "reach.zarr"
    collect(
        CollectConfig(env_id="dopr_robot/ReachChain-v0", task_horizon=1, episodes=3, image=True),
        store,
        progress=False,
    )
    policy = POLICY.model_copy(update={"obs_keys": ["state", "image"], "image_feature_dim": 8})
    settings = config(
        store,
        tmp_path / "run",
        steps=2,
        batch_size=4,
        val_every=2,
        val_batches=1,
        val_ratio=0.34,
        tensorboard=True,
    )
    result = run_training(settings, policy, progress=False)
    assert np.isfinite(result.final_loss) and np.isfinite(result.val_loss)
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    loaded = load_policy(tmp_path / "run")
    obs = {
        "state": torch.zeros(1, 2, 15),
        "image": torch.zeros(1, 2, 96, 96, 3, dtype=torch.uint8),
    }
    assert loaded.predict_action(obs).shape == (1, 4, 3)


def test_resume_may_extend_steps_with_the_schedule_recomputed(store, tmp_path, capsys):
    """`--resume --steps N` with N larger extends a run: the cosine schedule is recomputed over
    N steps from the resumed step on; a smaller N is one sentence and changes nothing."""
    import math

    out = tmp_path / "run"
    settings = config(store, out, steps=6, warmup_steps=2, lr=1e-2, checkpoint_every=3)
    run_training(settings, POLICY, progress=False)
    assert main(["train", "--out", str(out), "--resume", "--steps", "3", "--quiet"]) == 2
    assert "not shorten it to 3" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--steps", "10", "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 10
    state = json.loads((latest_checkpoint(out) / "trainer_state.json").read_text())
    assert state["step"] == 10
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = {row["step"]: row["lr"] for row in rows if "lr" in row}

    def cosine(step, total):  # diffusers' get_cosine_schedule_with_warmup, warm-up 2
        if step < 2:
            return 1e-2 * step / 2
        return 1e-2 * 0.5 * (1 + math.cos(math.pi * (step - 2) / (total - 2)))

    assert logged[6] == pytest.approx(cosine(6, 6))  # the first run ended at lr 0
    assert logged[7] == pytest.approx(cosine(7, 10))  # the extension follows the 10-step curve
    assert logged[10] == pytest.approx(cosine(10, 10))


def test_a_moved_run_resumes_with_its_data_where_it_was(store, tmp_path):
    """A run directory moved elsewhere (its data left in place) resumes and extends."""
    import shutil

    first = tmp_path / "a" / "run"
    run_training(config(store, first, steps=3, checkpoint_every=3), POLICY, progress=False)
    moved = tmp_path / "b" / "deeper" / "run"
    moved.parent.mkdir(parents=True)
    shutil.move(first, moved)
    assert main(["train", "--out", str(moved), "--resume", "--steps", "5", "--quiet"]) == 0
    state = json.loads((latest_checkpoint(moved) / "trainer_state.json").read_text())
    assert state["step"] == 5


def test_a_truncated_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
    store, tmp_path, capsys
):
    """Issue 29's case: the newest model.safetensors cut to 100 bytes. `--resume` says which
    file is broken, keeps it as step_<n>.broken (never overwritten), resumes from the step
    before and finishes; a cut trainer_state.json is handled the same way; when no checkpoint
    loads, one sentence and exit 2."""
    out = tmp_path / "run"
    run_training(config(store, out, steps=6, checkpoint_every=3), POLICY, progress=False)
    newest = out / "checkpoints" / "step_0000006" / "model.safetensors"
    cut = newest.read_bytes()[:100]
    newest.write_bytes(cut)
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--steps", "9", "--quiet"]) == 0
    error = capsys.readouterr().err
    assert "step_0000006/model.safetensors cannot be read" in error
    assert "set aside as step_0000006.broken" in error and "resuming from" in error
    kept = out / "checkpoints" / "step_0000006.broken" / "model.safetensors"
    assert kept.read_bytes() == cut  # the broken file is kept as it was
    assert json.loads((latest_checkpoint(out) / "trainer_state.json").read_text())["step"] == 9
    assert (out / "checkpoints" / "step_0000006" / "model.safetensors").stat().st_size > 100
    # a cut trainer_state.json, then every checkpoint broken
    (latest_checkpoint(out) / "trainer_state.json").write_text('{"step": ')
    for path in (out / "checkpoints").glob("step_000000[36]/model.safetensors"):
        path.write_bytes(b"")
    assert main(["train", "--out", str(out), "--resume", "--steps", "12", "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("dopr-robot: error: ") and "no checkpoint loads" in lines[-1]
    assert "trainer_state.json cannot be read" in lines[0]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step_0000003.broken", "step_0000006.broken", "step_0000006.broken-2",
        "step_0000009.broken",
    ]  # fmt: skip
