"""factor.py: the damped inverse of a statistic, its damping (floor, Kronecker pairs) and its
fallback chain (float64, more damping); rank-deficient statistics stay finite."""

import pytest
import torch
from torch import nn

from dopr_robot.optim import DoPr
from dopr_robot.optim.factor import DAMPING_FLOOR, damped_inverse

from .conftest import mlp


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


def test_float32_failure_retries_in_float64(fail_cholesky):
    fail_cholesky(lambda m: m.dtype == torch.float32)
    a = torch.randn(6, 6)
    result = damped_inverse(a @ a.T, 0.1, "trace")
    assert result.attempts == 2 and result.inverse.dtype == torch.float32


def test_more_damping_rescues_an_indefinite_statistic():
    sigma = torch.diag(torch.tensor([1.0, 1.0, -0.5], dtype=torch.float64))  # trace 1.5
    result = damped_inverse(sigma, 0.1, "trace")  # λ = 0.15 fails; 1.5 and beyond succeed
    assert result.inverse is not None and result.attempts == 3
    assert result.damping == pytest.approx(1.5)


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


@pytest.mark.parametrize("damping", ["trace", "trace_over_dim"])
def test_a_kronecker_pair_is_damped_like_a_single_factor(damping):
    """The damped pair's mean eigenvalue exceeds A ⊗ T's by exactly the λ a single factor of
    that statistic gets (γ·tr/d, or γ·tr): the γ axis means one thing for Linear and Conv."""
    torch.manual_seed(0)
    conv = nn.Conv1d(3, 4, 5, padding=2).double()
    gamma = 0.1
    opt = DoPr(conv, base="sgd", gamma=gamma, damping=damping, statistic="ema", update_every=1)
    conv(torch.randn(6, 3, 9, dtype=torch.float64)).pow(2).sum().backward()
    opt.step()
    state = opt.state[conv.weight]
    channel, tap = state["ap_sigma"], state["ap_tap_sigma"]
    pair = torch.kron(channel, tap)
    damped = torch.kron(
        torch.linalg.inv(state["ap_inverse"]), torch.linalg.inv(state["ap_tap_inverse"])
    )
    added = float(torch.diagonal(damped - pair).mean())
    single = gamma * float(torch.trace(pair)) / (1 if damping == "trace" else pair.shape[0])
    assert added == pytest.approx(single, rel=1e-9)
    assert state["ap_damping"] == pytest.approx(single, rel=1e-9)
