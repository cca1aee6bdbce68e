"""The network diffusion and flow share: (noisy chunk, time, condition) -> chunk-shaped output.

Two backbones behind one call, `denoiser(sample [B, Tp, A], time [B], cond [B, C])`:
- `unet`: the conditional 1-D temporal U-Net (FiLM from time embedding + condition).
- `mlp`: the residual MLP over [flattened chunk, sinusoidal time embedding, condition].
"""

from __future__ import annotations

import torch
from torch import nn

from .config import PolicyConfig
from .nets import ConditionalUnet1D, ResidualMLP
from .nets.unet1d import SinusoidalEmbedding


class Denoiser(nn.Module):
    def __init__(self, config: PolicyConfig, action_dim: int, cond_dim: int):
        super().__init__()
        self.kind = config.backbone
        self.chunk_shape = (config.pred_horizon, action_dim)
        if self.kind == "unet":
            self.net = ConditionalUnet1D(
                action_dim,
                cond_dim,
                tuple(config.unet_down_dims),
                config.unet_kernel,
                config.time_embed_dim,
            )
        else:
            self.time_embedding = SinusoidalEmbedding(config.time_embed_dim)
            chunk = config.pred_horizon * action_dim
            self.net = ResidualMLP(
                chunk + config.time_embed_dim + cond_dim,
                chunk,
                config.mlp_width,
                config.mlp_depth,
            )

    def forward(self, sample: torch.Tensor, time: torch.Tensor, cond: torch.Tensor):
        time = time.to(sample.dtype).expand(sample.shape[0])
        if self.kind == "unet":
            return self.net(sample, time, cond)
        inputs = torch.cat([sample.flatten(1), self.time_embedding(time), cond], dim=-1)
        return self.net(inputs).reshape(sample.shape[0], *self.chunk_shape)

    def integrate(self, scheduler, steps: int, noise: torch.Tensor, cond: torch.Tensor):
        """Run a diffusers scheduler's sampling loop from `noise`: DDIM for diffusion,
        FlowMatch Euler/Heun for flow; the scheduler decides what the output means."""
        x = noise
        scheduler.set_timesteps(steps)
        for t in scheduler.timesteps:
            x = scheduler.step(self(x, t.to(x.device), cond), t, x).prev_sample
        return x
