"""The trainer's fast path (fused AdamW, GEMM conv weight gradients) and bf16 on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from dopr_robot.errors import UserError
from dopr_robot.policies.nets.conv import Conv1d
from dopr_robot.train import Trainer, latest_checkpoint
from dopr_robot.train import fast_path as fast_path_module
from dopr_robot.train import train as run_training

from .conftest import POLICY, config

UNET = POLICY.model_copy(update={"backbone": "unet", "unet_down_dims": [8, 16]})


@pytest.mark.parametrize("optimizer", ["adamw", "dopr-adamw", "muon"])
def test_the_fast_path_fuses_adamw_and_off_it_is_plain_eager_pytorch(store, tmp_path, optimizer):
    runs = {}
    for fast in (True, False):
        settings = config(store, tmp_path / str(fast), optimizer=optimizer, fast_path=fast)
        trainer = Trainer(settings, UNET, progress=False)
        assert trainer.optimizer.param_groups[0]["fused"] is fast
        convs = [m for m in trainer.policy.modules() if isinstance(m, Conv1d)]
        assert convs and all(m.gemm_weight_grad is fast for m in convs)
        runs[fast] = [trainer.train_step()["loss"] for _ in range(4)]
    # the forward is the same; the updates are the same sums in another order, so the losses
    # agree closely; whether they also agree bitwise depends on the CPU (they differ on the AMD
    # EPYC build machine and match over 4 steps on the Intel Xeon one), so the flags above, not
    # the numbers, show which path ran
    assert runs[True][0] == runs[False][0]
    assert runs[True][1:] == pytest.approx(runs[False][1:], rel=1e-2)


def test_a_checkpoint_from_before_the_fast_path_resumes_only_as_it_ran(store, tmp_path):
    """Runs written before `fast_path` existed trained plain eager PyTorch: they resume with
    fast_path = false, and the default is refused with the setting named."""
    run = tmp_path / "old"
    run_training(config(store, run, steps=3, fast_path=False), POLICY, progress=False)
    saved = latest_checkpoint(run) / "config.json"
    record = json.loads(saved.read_text())
    del record["train"]["fast_path"]
    saved.write_text(json.dumps(record))
    with pytest.raises(UserError, match="fast_path"):
        run_training(config(store, run, steps=6), POLICY, resume=True, progress=False)
    settings = config(store, run, steps=6, fast_path=False)
    assert run_training(settings, POLICY, resume=True, progress=False).steps == 6


@pytest.mark.skipif(
    not fast_path_module.cpu_has_native_bf16(), reason="this CPU has no native bf16"
)
def test_bf16_autocast_trains_on_a_cpu_with_native_bf16(store, tmp_path):
    settings = config(store, tmp_path / "bf16", bf16=True, device="cpu")
    trainer = Trainer(settings, UNET, progress=False)
    with trainer.autocast():
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    losses = [trainer.train_step()["loss"] for _ in range(4)]
    assert all(torch.isfinite(torch.tensor(losses)))


def test_bf16_on_a_cpu_without_it_is_one_sentence(store, tmp_path, monkeypatch):
    monkeypatch.setattr(fast_path_module, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(UserError, match="no native bf16"):
        Trainer(config(store, tmp_path / "x", bf16=True, device="cpu"), POLICY, progress=False)


@pytest.mark.parametrize("limit", [1e-3, 1e3])
def test_the_clip_gives_clip_grad_norms_numbers(store, tmp_path, limit):
    """The trainer's clip (one foreach norm, a rescale only over the limit) returns the norm
    torch's clip_grad_norm_ returns and leaves the same gradients, clipped or not."""
    trainer = Trainer(config(store, tmp_path / "run"), POLICY, progress=False)
    params = [p for p in trainer.policy.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    expected = [p.grad.clone() for p in params]
    reference = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for ref, grad in zip(reference, expected, strict=True):
        ref.grad = grad
    torch_norm = float(torch.nn.utils.clip_grad_norm_(reference, limit))
    assert trainer._clip_gradients(limit) == torch_norm
    for p, ref in zip(params, reference, strict=True):
        assert torch.equal(p.grad, ref.grad)


def test_train_resume_gives_a_run_from_before_the_fast_path_its_old_meaning(store, tmp_path):
    """`train --resume` starts from the run's saved settings as they were meant: a run written
    before `fast_path` existed goes on with fast_path = false, no flag needed."""
    from dopr_robot.cli import main

    run = tmp_path / "old"
    run_training(config(store, run, steps=3, fast_path=False), POLICY, progress=False)
    for saved in (run / "config.json", latest_checkpoint(run) / "config.json"):
        record = json.loads(saved.read_text())
        del record["train"]["fast_path"]
        saved.write_text(json.dumps(record))
    assert main(["train", "--out", str(run), "--resume", "--steps", "6", "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["fast_path"] is False
