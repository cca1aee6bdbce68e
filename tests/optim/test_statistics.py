"""Σ recorded by the hooks equals a float64 reference, for every adapter."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dopr_robot.optim import DoPr

from .helpers import conv1d_patches_by_loop


def recorded_sigma(model, layer, x):
    """Run forward+backward once and return the hook's exact Σ (pending sum / rows) for `layer`."""
    opt = DoPr(model, base="sgd", statistic="batch", update_every=1, conv_factor="full")
    model(x).sum().backward()
    state = opt.state[layer.weight]
    return state["ap_pending"] / state["ap_pending_rows"], state["ap_pending_rows"]


def homogeneous(rows):
    return torch.cat([rows, torch.ones(rows.shape[0], 1, dtype=rows.dtype)], dim=1)


def test_linear_with_extra_leading_dims():
    layer = nn.Linear(5, 4).double()
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    sigma, n = recorded_sigma(layer, layer, x)
    z = homogeneous(x.reshape(-1, 5))
    reference = sum(torch.outer(r, r) for r in z) / z.shape[0]
    assert n == 21
    torch.testing.assert_close(sigma, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding,stride,dilation", [(0, 1, 1), (2, 2, 1), (3, 1, 2), (1, 3, 2)])
def test_conv1d_patches(padding, stride, dilation):
    conv = nn.Conv1d(3, 4, 3, padding=padding, stride=stride, dilation=dilation).double()
    x = torch.randn(2, 3, 11, dtype=torch.float64)
    sigma, n = recorded_sigma(conv, conv, x)
    z = homogeneous(conv1d_patches_by_loop(conv, x))
    assert n == z.shape[0] == conv(x).shape[0] * conv(x).shape[-1]
    torch.testing.assert_close(sigma, z.T @ z / z.shape[0], rtol=1e-12, atol=1e-12)


def test_conv1d_patch_order_matches_weight_layout():
    """z·vec(W) must reproduce the convolution itself, or the AP would mix unrelated columns."""
    conv = nn.Conv1d(3, 4, 3, padding=1, stride=2, dilation=2, bias=False).double()
    x = torch.randn(2, 3, 9, dtype=torch.float64)
    z = conv1d_patches_by_loop(conv, x)
    out = (z @ conv.weight.reshape(4, -1).T).reshape(2, -1, 4).transpose(1, 2)
    torch.testing.assert_close(out, conv(x))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(padding=1, stride=2, dilation=1),
        dict(padding=2, stride=1, dilation=2),
        dict(padding="same", padding_mode="reflect"),
        dict(padding=1, padding_mode="circular"),
    ],
)
def test_conv2d_patches(kwargs):
    conv = nn.Conv2d(2, 3, 3, **kwargs).double()
    x = torch.randn(2, 2, 7, 6, dtype=torch.float64)
    sigma, n = recorded_sigma(conv, conv, x)
    # reference: pad like the module, then unfold; check the order against the conv itself
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        x_pad, pad = F.pad(x, conv._reversed_padding_repeated_twice, mode=mode), 0
    else:
        x_pad, pad = x, conv.padding
    patches = F.unfold(x_pad, 3, dilation=conv.dilation, padding=pad, stride=conv.stride)
    z = patches.transpose(1, 2).reshape(-1, 18)
    out = (z @ conv.weight.reshape(3, -1).T + conv.bias).reshape(2, -1, 3)
    torch.testing.assert_close(out, conv(x).flatten(2).transpose(1, 2))
    z = homogeneous(z)
    assert n == z.shape[0]
    torch.testing.assert_close(sigma, z.T @ z / z.shape[0], rtol=1e-12, atol=1e-12)


def test_row_subsampling_is_a_seeded_random_subset_not_a_stride():
    """Rows are (sample, position): with 4 positions per sample a stride of 4 would keep
    position 0 of every sample. The subset keeps max_rows rows spread over positions, the same
    ones on every run."""
    layer = nn.Linear(4, 2, bias=False).double()
    x = torch.randn(25, 4, 4, dtype=torch.float64)  # 25 samples x 4 positions = 100 rows
    sums = []
    for _ in range(2):
        opt = DoPr(layer, base="sgd", statistic="batch", update_every=1, max_rows=30)
        layer(x).sum().backward()
        state = opt.state[layer.weight]
        assert state["ap_pending_rows"] == 30
        sums.append(state["ap_pending"].clone())
        opt.remove_hooks()
    torch.testing.assert_close(sums[0], sums[1], rtol=0, atol=0)
    rows = x.reshape(-1, 4)
    chosen = opt._row_subset(opt._layers[0], {}, 100, 30).cpu()
    torch.testing.assert_close(sums[0], rows[chosen].T @ rows[chosen])
    positions = set((chosen % 4).tolist())
    assert len(positions) > 1  # not all the same position (a stride of 4 gives {0})


def test_statistics_stay_float32_under_bf16_autocast():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = DoPr(model, update_every=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(32, 8))
    assert out.dtype == torch.bfloat16
    out.float().pow(2).mean().backward()
    assert opt.state[model[2].weight]["ap_pending"].dtype == torch.float32
    opt.step()
    assert opt.state[model[2].weight]["ap_inverse"].dtype == torch.float32
    assert all(torch.isfinite(p).all() for p in model.parameters())
