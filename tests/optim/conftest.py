"""What the optimizer tests share: small models and loops, a float64 reference for convolution
patches, a stepped (model, optimizer) pair to copy, and a fixture that makes Cholesky fail.

Plain functions and classes are imported by the tests (`from .conftest import mlp`); the one
that needs pytest's monkeypatch is a fixture (`fail_cholesky`)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dopr_robot.optim import build_optimizer
from dopr_robot.optim.hooks import StatisticHook


def mlp(in_dim=6, hidden=16, out_dim=3, dtype=torch.float64) -> nn.Module:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.Tanh(), nn.LayerNorm(hidden), nn.Linear(hidden, out_dim)
    ).to(dtype)


class ConvNet(nn.Module):
    """Conv1d (padding, stride, dilation) -> GroupNorm -> Conv1d -> Linear head."""

    def __init__(self, channels=3, dtype=torch.float64):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, 8, 3, padding=2, stride=2, dilation=2)
        self.norm = nn.GroupNorm(2, 8)
        self.conv2 = nn.Conv1d(8, 4, 5, padding=2)
        self.head = nn.Linear(4, 2)
        self.to(dtype)

    def forward(self, x):
        h = self.conv2(torch.tanh(self.norm(self.conv1(x))))
        return self.head(h.mean(dim=-1))


def train(model, optimizer, batches, loss_fn=None):
    """Run one optimizer step per (x, y) batch; returns the losses."""
    loss_fn = loss_fn or (lambda out, y: ((out - y) ** 2).mean())
    losses = []
    for x, y in batches:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def batches(n_batches, batch, in_shape, out_dim, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(batch, *in_shape, generator=gen, dtype=dtype),
            torch.randn(batch, out_dim, generator=gen, dtype=dtype),
        )
        for _ in range(n_batches)
    ]


def conv1d_patches_by_loop(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Explicit loop over output positions: the patch [c, j] = x_pad[c, l*s + j*d]."""
    (k,), (s,), (d,), (p,) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    x_pad = F.pad(x, (p, p))
    length = (x.shape[-1] + 2 * p - d * (k - 1) - 1) // s + 1
    rows = []
    for b in range(x.shape[0]):
        for l in range(length):
            patch = torch.stack([x_pad[b, :, l * s + j * d] for j in range(k)], dim=1)
            rows.append(patch.reshape(-1))  # (C_in, k) order, like weight.reshape(out, -1)
    return torch.stack(rows)


@pytest.fixture
def fail_cholesky(monkeypatch):
    """`fail_cholesky(when)`: from then on, until the test ends, torch's Cholesky reports a
    failure for every matrix `when(matrix)` picks (what sends `factor.damped_inverse` down its
    fallback chain)."""

    def install(when) -> None:
        real = torch.linalg.cholesky_ex

        def fake(matrix, *args, **kwargs):
            factor, info = real(matrix, *args, **kwargs)
            return (factor, torch.ones_like(info)) if when(matrix) else (factor, info)

        monkeypatch.setattr(torch.linalg, "cholesky_ex", fake)

    return install


# ---- a stepped (model, optimizer) pair, copied or pickled (test_copy.py, test_hooks.py) --------


class MixedConvNet(nn.Module):
    """Conv1d (padding, stride, dilation), Conv2d ('same', reflect) and a Linear head."""

    def __init__(self):
        super().__init__()
        self.conv1d = nn.Conv1d(2, 6, 3, padding=2, stride=2, dilation=2)
        self.conv2d = nn.Conv2d(1, 4, 3, padding="same", padding_mode="reflect")
        self.head = nn.Linear(6 + 4, 2)

    def forward(self, x):
        h = torch.tanh(self.conv1d(x)).mean(dim=-1)
        image = x[:, :1, :16].reshape(-1, 1, 4, 4)
        g = torch.tanh(self.conv2d(image)).mean(dim=(-1, -2))
        return self.head(torch.cat([h, g], dim=-1))


#: kind -> (model factory, input shape, output width)
PAIR_MODELS = {
    "mlp": (lambda: mlp(dtype=torch.float32), (6,), 3),
    "conv": (MixedConvNet, (2, 20), 2),
}
#: how a pair is copied
COPIES = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda pair: pickle.loads(pickle.dumps(pair)),
}


def _pair_settings(name: str, conv_factor: str) -> dict:
    # refreshes every 2 steps, so that the copy is made between refreshes and refreshes after
    settings = dict(lr=1e-2)
    if name.startswith("dopr-"):
        settings.update(update_every=2, max_rows=24, conv_factor=conv_factor)
    return settings


def step_once(model, optimizer, batch) -> None:
    x, y = batch
    ((model(x) - y) ** 2).mean().backward()
    optimizer.step()
    optimizer.zero_grad()


def pair_batches(n: int, in_shape: tuple, out_dim: int, seed: int) -> list:
    """n float32 batches of 8 (x, y) rows."""
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(8, *in_shape, generator=gen), torch.randn(8, out_dim, generator=gen))
        for _ in range(n)
    ]


def stepped_pair(name: str, kind: str, conv_factor: str = "kron"):
    """A `PAIR_MODELS[kind]` model and the factory's `name` optimizer over it, stepped 3 times."""
    make, in_shape, out_dim = PAIR_MODELS[kind]
    torch.manual_seed(0)
    model = make()
    optimizer = build_optimizer(name, model, **_pair_settings(name, conv_factor))
    for batch in pair_batches(3, in_shape, out_dim, seed=1):
        step_once(model, optimizer, batch)
    return model, optimizer


def statistic_hooks(module: nn.Module) -> list:
    """The DoPr forward pre-hooks on `module`."""
    return [h for h in module._forward_pre_hooks.values() if isinstance(h, StatisticHook)]
