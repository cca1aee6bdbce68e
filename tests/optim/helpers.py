"""Small models and loops shared by the optimizer tests."""

from __future__ import annotations

import torch
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
