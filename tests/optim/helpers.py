"""Small models and loops shared by the optimizer tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
