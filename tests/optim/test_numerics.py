"""Damping, rank deficiency and the fallback chain: finite weights whatever the statistic does."""

import pytest
import torch
from torch import nn

from dopr_robot.optim import DoPr
from dopr_robot.optim import dopr as dopr_module
from dopr_robot.optim import factor as factor_module
from dopr_robot.optim.factor import DAMPING_FLOOR, damped_inverse

from .helpers import mlp


def test_damped_inverse_is_the_inverse():
    a = torch.randn(10, 10, dtype=torch.float64)
    sigma = a @ a.T
    result = damped_inverse(sigma, 0.1, "trace_over_dim")
    lam = 0.1 * torch.trace(sigma) / 10
    torch.testing.assert_close(result.damping, lam.item())
    expected = torch.linalg.inv(sigma + lam * torch.eye(10, dtype=torch.float64))
    torch.testing.assert_close(result.inverse, expected)
    assert result.attempts == 1 and 1.0 <= result.condition < float("inf")


def test_zero_statistic_uses_the_damping_floor():
    result = damped_inverse(torch.zeros(4, 4), 0.1, "trace")
    assert result.damping == DAMPING_FLOOR
    assert torch.isfinite(result.inverse).all()


def test_non_finite_statistic_is_refused():
    sigma = torch.eye(3)
    sigma[0, 1] = float("nan")
    result = damped_inverse(sigma, 0.1, "trace")
    assert result.inverse is None and result.reason == "non-finite statistic"


def test_rank_deficient_statistic_stays_finite():
    model = mlp(in_dim=32, hidden=64, dtype=torch.float32)  # batch 4 << width: Σ has rank <= 5
    opt = DoPr(model, gamma=0.0, statistic="batch", update_every=1, lr=1e-2)
    for _ in range(5):
        model(torch.randn(4, 32)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(row["failures"] == 0 for row in opt.diagnostics().values())


def _fail_cholesky(monkeypatch, when):
    real = torch.linalg.cholesky_ex

    def fake(matrix, *args, **kwargs):
        factor, info = real(matrix, *args, **kwargs)
        return (factor, torch.ones_like(info)) if when(matrix) else (factor, info)

    monkeypatch.setattr(factor_module.torch.linalg, "cholesky_ex", fake)


def test_float32_failure_retries_in_float64(monkeypatch):
    _fail_cholesky(monkeypatch, lambda m: m.dtype == torch.float32)
    a = torch.randn(6, 6)
    result = damped_inverse(a @ a.T, 0.1, "trace")
    assert result.attempts == 2 and result.inverse.dtype == torch.float32


def test_failure_without_previous_inverse_passes_the_raw_gradient(monkeypatch):
    _fail_cholesky(monkeypatch, lambda m: True)
    layer = nn.Linear(4, 2)
    twin = nn.Linear(4, 2)
    twin.load_state_dict(layer.state_dict())
    opt = DoPr(layer, update_every=1, lr=0.1)
    base = torch.optim.AdamW(
        twin.parameters(), lr=0.1, weight_decay=1e-6, betas=(0.95, 0.999), fused=True
    )
    x = torch.randn(8, 4)
    for model, optimizer in ((layer, opt), (twin, base)):
        model(x).pow(2).sum().backward()
        optimizer.step()
    assert torch.equal(layer.weight, twin.weight)
    assert sum(row["failures"] for row in opt.diagnostics().values()) == 1


def test_failure_keeps_the_previous_inverse(monkeypatch):
    layer = nn.Linear(4, 2)
    opt = DoPr(layer, update_every=1, lr=0.1)
    layer(torch.randn(8, 4)).pow(2).sum().backward()
    opt.step()
    opt.zero_grad()
    kept = opt.state[layer.weight]["ap_inverse"].clone()
    _fail_cholesky(monkeypatch, lambda m: True)
    layer(torch.randn(8, 4) * 5).pow(2).sum().backward()
    opt.step()
    assert torch.equal(opt.state[layer.weight]["ap_inverse"], kept)
    assert opt.state[layer.weight]["ap_failures"] == 1
    assert torch.isfinite(layer.weight).all()


def test_more_damping_rescues_an_indefinite_statistic():
    sigma = torch.diag(torch.tensor([1.0, 1.0, -0.5], dtype=torch.float64))  # trace 1.5
    result = damped_inverse(sigma, 0.1, "trace")  # λ = 0.15 fails; 1.5 and beyond succeed
    assert result.inverse is not None and result.attempts == 3
    assert result.damping == pytest.approx(1.5)


def _step_with_a_non_finite_inverse(monkeypatch, on_device: bool) -> tuple[nn.Linear, DoPr]:
    monkeypatch.setattr(dopr_module, "_reads_are_free", lambda device: not on_device)
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    opt = DoPr(layer, update_every=2, lr=0.1)
    layer(torch.randn(8, 3)).pow(2).sum().backward()
    opt.step()
    opt.zero_grad()
    opt.state[layer.weight]["ap_inverse"][0, 0] = float("inf")
    opt.state[layer.weight]["ap_steps"] = 1  # not a refresh step: the bad inverse is used
    layer(torch.randn(8, 3)).pow(2).sum().backward()
    opt.step()
    return layer, opt


def test_non_finite_preconditioned_gradient_never_reaches_the_weights(monkeypatch):
    """Both ways of deciding (a host read on CPU, torch.where on a GPU) fall back alike."""
    results = {}
    for on_device in (False, True):
        layer, opt = _step_with_a_non_finite_inverse(monkeypatch, on_device)
        assert torch.isfinite(layer.weight).all() and torch.isfinite(layer.bias).all()
        assert opt.diagnostics()["Linear"]["failures"] == 1
        results[on_device] = [layer.weight.detach(), layer.bias.detach()]
    for a, b in zip(results[False], results[True], strict=True):
        assert torch.equal(a, b)


def test_a_non_finite_batch_never_enters_the_ema_statistic():
    """One NaN batch is counted as a failure and the EMA keeps its last good value."""
    layer = nn.Linear(3, 2)
    opt = DoPr(layer, update_every=1, statistic="ema", lr=0.1)
    layer(torch.randn(8, 3)).pow(2).sum().backward()
    opt.step()
    opt.zero_grad()
    before = opt.state[layer.weight]["ap_sigma"].clone()
    bad = torch.randn(8, 3)
    bad[0, 0] = float("nan")
    layer(bad).sum().backward()  # the statistic sees the NaN row
    layer.weight.grad.nan_to_num_(0.0)
    layer.bias.grad.nan_to_num_(0.0)
    opt.step()
    opt.zero_grad()
    state = opt.state[layer.weight]
    assert torch.equal(state["ap_sigma"], before)
    assert state["ap_failures"] == 1
    layer(torch.randn(8, 3)).pow(2).sum().backward()
    opt.step()  # and the next good batch refreshes normally
    assert torch.isfinite(opt.state[layer.weight]["ap_sigma"]).all()
    assert not torch.equal(opt.state[layer.weight]["ap_sigma"], before)


def test_the_float64_fallback_forms_the_damped_matrix_in_float64(monkeypatch):
    """A float32 Σ whose λ is below float32's resolution at Σ's scale: adding λ in float32 rounds
    it away, so the float64 attempt must cast Σ first."""
    from dopr_robot.optim import factor as factor_module

    seen = []
    real = factor_module._try_cholesky

    def record(matrix):
        seen.append(matrix)
        return None if matrix.dtype == torch.float32 else real(matrix)

    monkeypatch.setattr(factor_module, "_try_cholesky", record)
    sigma = torch.diag(torch.tensor([1e8, 1.0], dtype=torch.float32))
    result = damped_inverse(sigma, 1e-9, "trace_over_dim")  # λ = 0.05
    assert result.attempts == 2
    float64_try = seen[1]
    assert float64_try.dtype == torch.float64
    assert float(float64_try[1, 1]) == pytest.approx(1.0 + result.damping, rel=1e-12)
    assert float(float64_try[0, 0]) - 1e8 == pytest.approx(result.damping, rel=1e-6)


def test_a_step_without_refresh_reads_nothing_back_from_the_device(monkeypatch):
    """On a GPU the finiteness guard decides on the device: no tensor is turned into a Python
    bool or number by DoPr's own code in a step that does not refresh (each would be a
    device->host sync per layer per step). Run here with the GPU branch forced on CPU tensors."""
    import sys

    monkeypatch.setattr(dopr_module, "_reads_are_free", lambda device: False)
    model = mlp()
    opt = DoPr(model, update_every=10, lr=0.01)
    model(torch.randn(16, 6, dtype=torch.float64)).pow(2).mean().backward()
    opt.step()  # the refresh step
    opt.zero_grad()
    model(torch.randn(16, 6, dtype=torch.float64)).pow(2).mean().backward()
    reads = []
    for name in ("__bool__", "item", "__float__", "__int__"):
        real = getattr(torch.Tensor, name)

        def spy(self, *args, _real=real, _name=name):
            caller = sys._getframe(1).f_code.co_filename
            if "dopr_robot" in caller:
                reads.append((_name, caller))
            return _real(self, *args)

        monkeypatch.setattr(torch.Tensor, name, spy)
    opt.step()
    monkeypatch.undo()
    assert reads == []
    assert opt.diagnostics()  # the count is read here, off the hot path
