"""Residual MLP backbone: the DoPr paper's Humanoid policy shape, and the fast CPU default.

Flat input in, flat output out; a policy concatenates whatever it conditions on (observation
features, a noisy action chunk, a time embedding) before calling it. Pre-norm residual blocks
keep deep stacks trainable with any optimizer, so a comparison of optimizers is not a comparison
of which one copes with a badly conditioned architecture.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """x + Linear(Mish(Linear(LayerNorm(x)))) with a hidden expansion."""

    def __init__(self, width: int, expansion: int = 2) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width * expansion)
        self.act = nn.Mish()
        self.fc2 = nn.Linear(width * expansion, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class ResidualMLP(nn.Module):
    """Linear stem, `depth` residual blocks of `width`, LayerNorm + Linear head."""

    def __init__(
        self, in_dim: int, out_dim: int, width: int = 256, depth: int = 3, expansion: int = 2
    ) -> None:
        super().__init__()
        self.stem = nn.Linear(in_dim, width)
        self.blocks = nn.Sequential(*[ResidualBlock(width, expansion) for _ in range(depth)])
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
