"""Conditional 1-D temporal U-Net of diffusion_policy's shape (Chi et al. 2023).

Convolves over the action-chunk time axis: Conv1d blocks (kernel 5, GroupNorm, Mish), residual
blocks modulated by FiLM from a condition vector (diffusion/flow time embedding concatenated with
the observation features), stride-2 Conv1d down-sampling and ConvTranspose1d up-sampling with skip
connections. Input and output are [batch, horizon, action_dim].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .conv import Conv1d


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sinusoidal embedding of a scalar time/step per sample."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(
            torch.arange(half, device=t.device, dtype=torch.float32)
            * (-math.log(10000.0) / (half - 1))
        )
        angles = t.float()[:, None] * freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Conv1dBlock(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, groups: int = 8) -> None:
        super().__init__(
            Conv1d(in_ch, out_ch, kernel, padding=kernel // 2),
            nn.GroupNorm(groups, out_ch),
            nn.Mish(),
        )


class ConditionalResidualBlock1D(nn.Module):
    """Two Conv1d blocks; FiLM (per-channel scale and shift from the condition) between them."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, kernel: int = 5) -> None:
        super().__init__()
        self.block1 = Conv1dBlock(in_ch, out_ch, kernel)
        self.block2 = Conv1dBlock(out_ch, out_ch, kernel)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_ch))
        self.residual = Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        out = self.block1(x) * scale + shift
        return self.block2(out) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """U-Net over time with FiLM conditioning.

    Args:
        action_dim: channels of the denoised sequence.
        cond_dim: size of the global condition (observation features); may be 0.
        down_dims: channels per level; the time axis halves between levels.
        kernel: temporal kernel size.
        time_embed_dim: size of the diffusion/flow time embedding.
    """

    def __init__(
        self,
        action_dim: int,
        cond_dim: int = 0,
        down_dims: tuple[int, ...] = (64, 128, 256),
        kernel: int = 5,
        time_embed_dim: int = 128,
    ) -> None:
        super().__init__()
        self.time_encoder = nn.Sequential(
            SinusoidalEmbedding(time_embed_dim),
            nn.Linear(time_embed_dim, 4 * time_embed_dim),
            nn.Mish(),
            nn.Linear(4 * time_embed_dim, time_embed_dim),
        )
        film_dim = time_embed_dim + cond_dim
        dims = (action_dim, *down_dims)
        levels = list(zip(dims[:-1], dims[1:], strict=True))
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(levels):
            last = i == len(levels) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        ConditionalResidualBlock1D(c_in, c_out, film_dim, kernel),
                        ConditionalResidualBlock1D(c_out, c_out, film_dim, kernel),
                        nn.Identity() if last else Conv1d(c_out, c_out, 3, stride=2, padding=1),
                    ]
                )
            )
        mid = down_dims[-1]
        self.mid = nn.ModuleList(
            [
                ConditionalResidualBlock1D(mid, mid, film_dim, kernel),
                ConditionalResidualBlock1D(mid, mid, film_dim, kernel),
            ]
        )
        self.up = nn.ModuleList()
        for c_in, c_out in reversed(levels[1:]):  # each up level undoes one down-sampling
            self.up.append(
                nn.ModuleList(
                    [
                        ConditionalResidualBlock1D(c_out * 2, c_in, film_dim, kernel),
                        ConditionalResidualBlock1D(c_in, c_in, film_dim, kernel),
                        nn.ConvTranspose1d(c_in, c_in, 4, stride=2, padding=1),
                    ]
                )
            )
        self.final = nn.Sequential(
            Conv1dBlock(down_dims[0], down_dims[0], kernel), Conv1d(down_dims[0], action_dim, 1)
        )

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """sample [B, T, action_dim], timestep [B], cond [B, cond_dim] -> [B, T, action_dim]."""
        x = sample.transpose(1, 2)
        film = self.time_encoder(timestep.expand(sample.shape[0]))
        if cond is not None:
            film = torch.cat([film, cond], dim=-1)
        skips = []
        for block1, block2, downsample in self.down:
            x = block2(block1(x, film), film)
            skips.append(x)
            x = downsample(x)
        for block in self.mid:
            x = block(x, film)
        for block1, block2, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(block2(block1(x, film), film))
        return self.final(x).transpose(1, 2)
