"""What the three policies share: normaliser, observation encoder, chunking, the contract.

    loss, info = policy.compute_loss(batch, noise)   # batch from SequenceDataset
    chunk = policy.predict_action(obs)               # obs {key: [B, To, ...]} -> [B, Ta, A]
    policy.reset()                                   # between episodes

`predict_action` returns the Ta actions to execute now (receding horizon): the predicted chunk
covers Tp steps starting at the first observed frame, and execution starts at its frame To − 1
(the current one), as in diffusion_policy. Actions are predicted in the normaliser's [−1, 1] and
clipped there, so an unnormalised action never leaves the range seen in the demonstrations.

The normaliser is a submodule: it is saved and loaded with the weights. The policies are
stateless between calls (the caller keeps the observation history), so `reset()` has nothing to
clear; it exists so that a stateful policy can be swapped in.
"""

from __future__ import annotations

import torch
from torch import nn

from ..datasets import Normalizer
from .config import PolicyConfig, ShapeMeta
from .encoders import ObservationEncoder
from .noise import StepNoise, default_noise


class Policy(nn.Module):
    def __init__(self, config: PolicyConfig, shape_meta: ShapeMeta):
        super().__init__()
        missing = [key for key in config.obs_keys if key not in shape_meta.obs]
        if missing:
            raise ValueError(f"obs_keys {missing} are not in the data ({sorted(shape_meta.obs)})")
        self.config = config
        self.shape_meta = shape_meta
        self.action_dim = shape_meta.action_dim
        dims = {key: shape_meta.obs[key][-1] for key in config.obs_keys}
        modes = {key: "image" for key in config.obs_keys if shape_meta.is_image(key)}
        self.normalizer = Normalizer({**dims, "action": self.action_dim}, modes)
        self.encoder = ObservationEncoder(config, shape_meta)

    # ---- shared ------------------------------------------------------------------------------

    def fit_normalizer(self, data: dict) -> None:
        """Fit on the training episodes' rows: {key: [N, ...]} for low-dim keys and action."""
        self.normalizer.fit({k: v for k, v in data.items() if self.normalizer.modes[k] != "image"})

    def encode(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """{key: [B, >= To, ...]} -> [B, cond_dim], from the first To frames."""
        to = self.config.obs_horizon
        normalized = {
            key: self.normalizer.normalize(key, obs[key][:, :to].to(self._device))
            for key in self.config.obs_keys
        }
        if self.config.ill_conditioning != 1.0:
            for key in self.encoder.low_dim_keys:
                scale = torch.ones(normalized[key].shape[-1], device=self._device)
                scale[1::2] = self.config.ill_conditioning
                normalized[key] = normalized[key] * scale
        return self.encoder(normalized)

    @property
    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def compute_loss(self, batch: dict, noise: StepNoise | None = None):
        """(scalar loss, {name: float}) on a batch {"obs": {...}, "action": [B, Tp, A]}."""
        actions = self.normalizer.normalize("action", batch["action"].to(self._device))
        if noise is None:
            noise = default_noise(actions.shape[0], self._device)
        return self.loss(self.encode(batch["obs"]), actions, noise)

    def forward(self, batch: dict, noise: StepNoise | None = None):
        """`compute_loss`: the call DistributedDataParallel wraps."""
        return self.compute_loss(batch, noise)

    @torch.no_grad()
    def predict_action(
        self,
        obs: dict[str, torch.Tensor],
        generator: torch.Generator | None = None,
        initial_noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """{key: [B, To, ...]} -> the [B, Ta, A] actions to execute now (see the module doc).

        The sampler's starting noise is drawn from `generator`, or given as `initial_noise`
        [B, Tp, A] (the evaluator gives each episode its own, so results do not depend on how
        episodes are batched)."""
        cond = self.encode(obs)
        if initial_noise is None:
            initial_noise = self.initial_noise(cond.shape[0], generator)
        chunk = self.sample(cond, initial_noise.to(cond.device)).clamp(-1.0, 1.0)
        start = self.config.obs_horizon - 1
        chunk = chunk[:, start : start + self.config.action_horizon]
        return self.normalizer.unnormalize("action", chunk)

    def reset(self) -> None:
        """Nothing to clear: the policies keep no state between calls."""

    def initial_noise(self, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        shape = (batch, self.config.pred_horizon, self.action_dim)
        return torch.randn(shape, generator=generator).to(self._device)

    # ---- what each policy supplies -----------------------------------------------------------

    def loss(self, cond: torch.Tensor, actions: torch.Tensor, noise: StepNoise):
        raise NotImplementedError

    def sample(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Normalised action chunks [B, Tp, A], starting from `noise` (unused by regression)."""
        raise NotImplementedError
