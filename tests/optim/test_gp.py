"""gp.py: with the AP stage off, the GP stage is torch's AdamW (fused and per-tensor) and Muon
(+ AdamW) step for step, across a reload, a step without a gradient, a checkpoint from before
`fused`, conv weights through their 2-D view and a strided gradient."""

import copy

import pytest
import torch
from torch import nn

from dopr_robot.optim import DoPr, GPOptimizer, build_optimizer

from .conftest import batches, mlp, train


def test_ap_off_equals_torch_adamw_step_for_step():
    torch.manual_seed(3)
    model_a, data = mlp(dtype=torch.float32), batches(6, 32, (6,), 3, dtype=torch.float32)
    model_b = mlp(dtype=torch.float32)
    model_b.load_state_dict(model_a.state_dict())
    ours = DoPr(
        model_a, base="adamw", ap=False, lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99), fused=True
    )
    theirs = torch.optim.AdamW(
        model_b.parameters(), lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99), fused=True
    )
    train(model_a, ours, data)
    train(model_b, theirs, data)
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("fused", [True, False])
def test_the_adamw_core_follows_torchs_fused_or_unfused_kernel_bit_for_bit(fused):
    """The default (fused where the parameters allow) is torch's fused AdamW; fused=False is its
    per-tensor loop, the numbers of runs made before the fused default."""
    torch.manual_seed(5)
    model_a, data = mlp(dtype=torch.float32), batches(6, 32, (6,), 3, dtype=torch.float32)
    model_b = mlp(dtype=torch.float32)
    model_b.load_state_dict(model_a.state_dict())
    settings = dict(lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99))
    ours = GPOptimizer(model_a, base="adamw", **settings, **({} if fused else {"fused": False}))
    theirs = torch.optim.AdamW(model_b.parameters(), **settings, fused=fused)
    train(model_a, ours, data)
    train(model_b, theirs, data)
    assert ours.param_groups[0]["fused"] is fused
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("fused", [True, False])
def test_the_adamw_core_keeps_torchs_numbers_across_a_reload_and_a_step_without_a_gradient(fused):
    """The GP core keeps its AdamW state lists between steps: a state dict loaded into the same
    optimizer, and a step in which a parameter has no gradient (skipped, as torch skips it),
    must not leave it stepping stale or wrong tensors."""
    torch.manual_seed(7)
    model_a, data = mlp(dtype=torch.float32), batches(8, 32, (6,), 3, dtype=torch.float32)
    model_b = mlp(dtype=torch.float32)
    model_b.load_state_dict(model_a.state_dict())
    settings = dict(lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99), fused=fused)
    ours = GPOptimizer(model_a, base="adamw", **settings)
    theirs = torch.optim.AdamW(model_b.parameters(), **settings)
    train(model_a, ours, data[:3])
    train(model_b, theirs, data[:3])
    saved = copy.deepcopy((ours.state_dict(), theirs.state_dict()))
    train(model_a, ours, data[3:4])
    train(model_b, theirs, data[3:4])
    ours.load_state_dict(saved[0])  # back to the moments of step 3; parameters stay where they are
    theirs.load_state_dict(saved[1])
    train(model_a, ours, data[4:5])
    train(model_b, theirs, data[4:5])
    for model in (model_a, model_b):
        model[0].bias.requires_grad_(False)
    train(model_a, ours, data[5:6])
    train(model_b, theirs, data[5:6])
    for model in (model_a, model_b):
        model[0].bias.requires_grad_(True)
    train(model_a, ours, data[6:])
    train(model_b, theirs, data[6:])
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)
    assert ours.state[model_a[0].bias]["step"].item() == 6  # 3 loaded + 3 with a gradient


def test_a_checkpoint_from_before_fused_resumes_unfused():
    """Param groups saved before the `fused` setting existed load and keep stepping unfused."""
    torch.manual_seed(6)
    model, data = mlp(dtype=torch.float32), batches(4, 16, (6,), 3, dtype=torch.float32)
    twin = mlp(dtype=torch.float32)
    twin.load_state_dict(model.state_dict())
    old = GPOptimizer(model, base="adamw", lr=1e-2, fused=False)
    train(model, old, data[:2])
    saved = old.state_dict()
    for group in saved["param_groups"]:
        del group["fused"]
    resumed = GPOptimizer(model, base="adamw", lr=1e-2)
    resumed.load_state_dict(saved)
    reference = torch.optim.AdamW(
        twin.parameters(), lr=1e-2, weight_decay=1e-6, betas=(0.95, 0.999)
    )
    train(twin, reference, data)
    train(model, resumed, data[2:])
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


def test_ap_off_equals_torch_muon_plus_adamw_step_for_step():
    torch.manual_seed(4)
    model_a, data = mlp(dtype=torch.float32), batches(6, 32, (6,), 3, dtype=torch.float32)
    model_b = mlp(dtype=torch.float32)
    model_b.load_state_dict(model_a.state_dict())
    ours = DoPr(model_a, base="muon", ap=False, lr=1e-2, weight_decay=0.1)
    matrices = [m.weight for m in model_b.modules() if isinstance(m, nn.Linear)]
    others = [p for p in model_b.parameters() if all(p is not w for w in matrices)]
    muon = torch.optim.Muon(matrices, lr=1e-2, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW(others, lr=1e-2, weight_decay=0.1, betas=(0.95, 0.999), fused=True)
    for x, y in data:
        ((model_a(x) - y) ** 2).mean().backward()
        ours.step()
        ours.zero_grad()
        ((model_b(x) - y) ** 2).mean().backward()
        muon.step()
        adamw.step()
        muon.zero_grad()
        adamw.zero_grad()
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


def test_muon_updates_conv_weights_through_their_2d_view():
    conv = nn.Conv1d(3, 4, 5)
    twin = nn.Parameter(conv.weight.detach().reshape(4, -1).clone())
    opt = build_optimizer("muon", conv, lr=0.02, weight_decay=0.0)
    reference = torch.optim.Muon([twin], lr=0.02, weight_decay=0.0, adjust_lr_fn="match_rms_adamw")
    for _ in range(3):
        conv(torch.randn(2, 3, 9)).pow(2).mean().backward()
        twin.grad = conv.weight.grad.reshape(4, -1).clone()
        opt.step()
        reference.step()
        opt.zero_grad()
    torch.testing.assert_close(conv.weight.reshape(4, -1), twin, rtol=0, atol=0)


def test_a_strided_gradient_gets_the_same_fused_update_as_unfused():
    """torch's fused AdamW kernel ignores strides; the GP core must not hand it a view."""
    torch.manual_seed(7)
    block = torch.randn(4, 6)
    results = []
    for fused in (True, False):
        layer = nn.Linear(5, 4, bias=False)
        nn.init.zeros_(layer.weight)
        opt = GPOptimizer(layer, base="adamw", lr=0.1, weight_decay=0.0, fused=fused)
        with torch.no_grad():  # a column slice, as DoPr's [W | b] weight block
            opt._gp_update({id(layer.weight): block[:, :5]})
        results.append(layer.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-7)
