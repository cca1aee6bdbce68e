"""The AP update itself: least squares in one step, the dense solve, invariance, AP off = base."""

import copy

import pytest
import torch
from torch import nn

from dopr_robot.optim import DoPr, GPOptimizer, build_optimizer

from .helpers import ConvNet, batches, mlp, train

FAITHFUL = dict(statistic="batch", update_every=1)


def test_one_step_solves_least_squares():
    torch.manual_seed(1)
    n = 50
    x = torch.randn(n, 5, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1, 3.0, 1.0])
    y = torch.randn(n, 3, dtype=torch.float64)
    layer = nn.Linear(5, 3).double()
    opt = DoPr(layer, base="sgd", lr=1 / (2 * n), weight_decay=0.0, gamma=0.0, **FAITHFUL)
    ((layer(x) - y) ** 2).sum().backward()
    opt.step()
    design = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution.T  # [3, 6] = [W | b]
    torch.testing.assert_close(layer.weight, solution[:, :5], rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(layer.bias, solution[:, 5], rtol=1e-8, atol=1e-8)


def test_plain_sgd_does_not_solve_it_in_one_step():
    n = 50
    x = torch.randn(n, 5, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1, 3.0, 1.0])
    y = torch.randn(n, 3, dtype=torch.float64)
    layer = nn.Linear(5, 3).double()
    opt = DoPr(layer, base="sgd", lr=1 / (2 * n), weight_decay=0.0, ap=False)
    ((layer(x) - y) ** 2).sum().backward()
    opt.step()
    design = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution.T
    assert (layer.weight - solution[:, :5]).abs().max() > 1e-2


@pytest.mark.parametrize("damping", ["trace", "trace_over_dim"])
@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_preconditioned_gradient_equals_dense_solve(damping, net):
    model = mlp() if net == "mlp" else ConvNet()
    x = torch.randn(12, 6) if net == "mlp" else torch.randn(4, 3, 10)
    x = x.double()
    gamma = 0.05
    opt = DoPr(
        model,
        base="sgd",
        lr=1.0,
        weight_decay=0.0,
        gamma=gamma,
        damping=damping,
        conv_factor="full",
        **FAITHFUL,
    )
    model(x).pow(2).sum().backward()
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d))]
    expected = {}
    for layer in layers:
        state = opt.state[layer.weight]
        sigma = state["ap_pending"] / state["ap_pending_rows"]
        d = sigma.shape[0]
        lam = gamma * torch.trace(sigma) / (1 if damping == "trace" else d)
        grad = torch.cat(
            [layer.weight.grad.reshape(layer.weight.shape[0], -1), layer.bias.grad[:, None]], dim=1
        )
        # M = G (Σ + λI)^-1  <=>  (Σ + λI) Mᵀ = Gᵀ  (Σ symmetric)
        solved = torch.linalg.solve(sigma + lam * torch.eye(d, dtype=sigma.dtype), grad.T).T
        expected[layer] = (layer.weight.detach().clone(), layer.bias.detach().clone(), solved)
    opt.step()
    for layer, (w0, b0, solved) in expected.items():
        update = torch.cat(
            [(w0 - layer.weight).reshape(w0.shape[0], -1), (b0 - layer.bias)[:, None]], dim=1
        )
        torch.testing.assert_close(update, solved, rtol=1e-9, atol=1e-11)


def test_the_weight_and_bias_blocks_equal_the_concatenated_product_step_after_step():
    """The adapter computes [G_W | g_b] P as its weight block and bias column, into buffers that
    are reused every step; on each of three steps (the later ones reuse the buffers) the
    update equals the product on the concatenated matrix, and the GP gets contiguous blocks."""
    torch.manual_seed(2)
    model = mlp()
    opt = DoPr(model, base="sgd", lr=1.0, weight_decay=0.0, **FAITHFUL)
    seen = []
    real_update = opt._gp_update
    opt._gp_update = lambda replaced: (seen.append(replaced), real_update(replaced))
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for _ in range(3):
        model(torch.randn(20, 6, dtype=torch.float64)).pow(2).sum().backward()
        before = {
            layer: (layer.weight.detach().clone(), layer.bias.detach().clone()) for layer in layers
        }
        grads = {
            layer: torch.cat([layer.weight.grad, layer.bias.grad[:, None]], dim=1)
            for layer in layers
        }
        opt.step()
        for layer in layers:
            product = grads[layer] @ opt.state[layer.weight]["ap_inverse"]
            w0, b0 = before[layer]
            torch.testing.assert_close(w0 - layer.weight, product[:, :-1], rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(b0 - layer.bias, product[:, -1], rtol=1e-12, atol=1e-14)
        opt.zero_grad()
    assert all(g.is_contiguous() for replaced in seen for g in replaced.values())


def test_bias_left_to_base_when_asked():
    layer = nn.Linear(4, 2).double()
    opt = DoPr(layer, base="sgd", lr=1.0, weight_decay=0.0, bias="base", **FAITHFUL)
    x = torch.randn(16, 4, dtype=torch.float64)
    layer(x).pow(2).sum().backward()
    bias_grad = layer.bias.grad.clone()
    b0 = layer.bias.detach().clone()
    assert opt.state[layer.weight]["ap_pending"].shape == (4, 4)
    opt.step()
    torch.testing.assert_close(b0 - layer.bias, bias_grad)


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


def _two_layer(dtype=torch.float64):
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).to(dtype)


@pytest.mark.parametrize("precondition", [True, False])
def test_invariance_to_affine_input_reparameterisation(precondition):
    """x -> Mx + c with W -> W M^-1, b -> b - W M^-1 c: with γ=0 and an SGD base, DoPr's function
    follows the same trajectory (the homogeneous coordinate makes it exact); plain SGD does not."""
    torch.manual_seed(5)
    a = _two_layer()
    b = _two_layer()
    b.load_state_dict(a.state_dict())
    mix = torch.randn(4, 4, dtype=torch.float64) + 3 * torch.eye(4, dtype=torch.float64)
    shift = torch.randn(4, dtype=torch.float64)
    with torch.no_grad():
        w_inv = a[0].weight @ torch.linalg.inv(mix)
        b[0].weight.copy_(w_inv)
        b[0].bias.copy_(a[0].bias - w_inv @ shift)
    settings = dict(base="sgd", lr=0.05, weight_decay=0.0, gamma=0.0, ap=precondition, **FAITHFUL)
    opt_a, opt_b = DoPr(a, **settings), DoPr(b, **settings)
    data = batches(8, 64, (4,), 2)
    probe = torch.randn(32, 4, dtype=torch.float64)
    for x, y in data:
        for model, opt, inputs in ((a, opt_a, x), (b, opt_b, x @ mix.T + shift)):
            ((model(inputs) - y) ** 2).mean().backward()
            opt.step()
            opt.zero_grad()
    gap = (a(probe) - b(probe @ mix.T + shift)).abs().max().item()
    if precondition:
        assert gap < 1e-8
    else:
        assert gap > 1e-3


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


def test_dopr_with_a_homogeneous_bias_steps_alike_fused_and_unfused():
    """The AP gradient of a layer with its bias is split from one [out, d + 1] matrix; the fused
    and the per-tensor AdamW must then give the same training to float32 rounding."""
    torch.manual_seed(8)
    data = batches(5, 32, (6,), 3, dtype=torch.float32)
    models = [mlp(dtype=torch.float32) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    for model, fused in zip(models, (True, False), strict=True):
        train(model, DoPr(model, update_every=2, lr=1e-2, fused=fused), data)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
