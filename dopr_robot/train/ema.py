"""Exponential moving average of a policy's weights (evaluated instead of the live weights, as
diffusion_policy and LeRobot do).

After optimizer step t (counting from 0): decay_t = min(decay, (1 + t) / (10 + t)), and for every
parameter ema ← decay_t · ema + (1 − decay_t) · live. This warm-up is the one TensorFlow's
ExponentialMovingAverage uses with `num_updates`; it is *not* diffusion_policy's EMAModel formula
(decay_t = 1 − (1 + t / inv_gamma)^(−power), power 0.75, clamped to [min_value, max_value]),
which warms up more slowly. Both keep early averages from dragging the random initialisation
along. Buffers (the normaliser) are copied, not averaged; the image encoders use GroupNorm by
default, so there are no BatchNorm running statistics to average (see policies/encoders.py).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..torch_compat import foreach_copy_, foreach_lerp_


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._averages = list(self.model.parameters())
        self._buffers = list(self.model.buffers())
        self._live: tuple[nn.Module, list, list] | None = None  # the model's tensors, listed once

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = self.decay_at(step)
        if self._live is None or self._live[0] is not model:
            self._live = (model, list(model.parameters()), list(model.buffers()))
        _, parameters, buffers = self._live
        # one fused call per kind, not one per tensor (the loop was 4 % of a small MLP's step)
        foreach_lerp_(self._averages, parameters, 1.0 - decay)
        if self._buffers:
            foreach_copy_(self._buffers, buffers)
