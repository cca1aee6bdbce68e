"""The U-Net's Conv1d: the GEMM weight gradient of large kernels equals nn.Conv1d's."""

import pytest
import torch
from torch import nn

from dopr_robot.policies.nets import conv as conv_module
from dopr_robot.policies.nets.conv import Conv1d


def _gradients(module, x, autocast=False):
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = module(x)
    (out.float() * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    return out, x.grad, module.weight.grad, module.bias.grad


@pytest.mark.parametrize("kernel,stride,padding", [(5, 1, 2), (3, 2, 1), (1, 1, 0)])
def test_the_gemm_weight_gradient_matches_torchs_conv1d(monkeypatch, kernel, stride, padding):
    monkeypatch.setattr(conv_module, "GEMM_WEIGHT_GRAD_ABOVE", 0)  # every kernel takes the GEMM
    torch.manual_seed(0)
    ours = Conv1d(6, 7, kernel, stride=stride, padding=padding)
    reference = nn.Conv1d(6, 7, kernel, stride=stride, padding=padding)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(3, 6, 9)
    assert ours._gemm_weight_grad(x)
    for mine, theirs in zip(_gradients(ours, x), _gradients(reference, x), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


def test_under_bf16_autocast_it_computes_in_bf16_and_returns_float32_gradients(monkeypatch):
    monkeypatch.setattr(conv_module, "GEMM_WEIGHT_GRAD_ABOVE", 0)
    torch.manual_seed(1)
    ours = Conv1d(8, 8, 5, padding=2)
    reference = nn.Conv1d(8, 8, 5, padding=2)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(4, 8, 16)
    mine, theirs = _gradients(ours, x, True), _gradients(reference, x, True)
    assert mine[0].dtype == theirs[0].dtype == torch.bfloat16
    assert ours.weight.grad.dtype == torch.float32
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2)


def test_small_kernels_and_inference_take_torchs_own_path():
    small = Conv1d(64, 64, 5, padding=2)  # 20 k elements, far below the threshold
    assert not small._gemm_weight_grad(torch.randn(2, 64, 8))
    large = Conv1d(1024, 1024, 5, padding=2)
    assert large._gemm_weight_grad(torch.randn(2, 1024, 4))
    with torch.no_grad():
        assert not large._gemm_weight_grad(torch.randn(2, 1024, 4))
