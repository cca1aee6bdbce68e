"""FlowPolicy: conditional flow matching on the linear (rectified) path, diffusers' samplers.

Convention (diffusers' / SD3's): x_σ = σ·ε + (1 − σ)·a for noise ε and normalised actions a,
σ ∈ [0, 1] (σ = 1 is pure noise); the network sees the timestep 1000·σ and predicts the velocity
ε − a; the loss is its MSE with σ ~ U(0, 1). Sampling integrates from σ = 1 to 0 with
`inference_steps` steps of `FlowMatchEulerDiscreteScheduler` (`flow_solver="euler"`, one network
call per step) or `FlowMatchHeunDiscreteScheduler` (`"heun"`, second order, two calls per step).
"""

from __future__ import annotations

import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler

from .base import Policy
from .config import PolicyConfig, ShapeMeta
from .denoiser import Denoiser

TIMESTEPS = 1000


class FlowPolicy(Policy):
    def __init__(self, config: PolicyConfig, shape_meta: ShapeMeta):
        super().__init__(config, shape_meta)
        self.denoiser = Denoiser(config, self.action_dim, self.encoder.output_dim)
        solver = {"euler": FlowMatchEulerDiscreteScheduler, "heun": FlowMatchHeunDiscreteScheduler}
        self.inference_scheduler = solver[config.flow_solver](num_train_timesteps=TIMESTEPS)

    def loss(self, cond, actions, noise):
        epsilon = noise.randn(*actions.shape[1:])
        sigma = noise.rand(1, 1)
        noisy = sigma * epsilon + (1.0 - sigma) * actions
        predicted = self.denoiser(noisy, sigma.flatten() * TIMESTEPS, cond)
        loss = F.mse_loss(predicted, epsilon - actions)
        return loss, {"loss": loss.item()}

    def sample(self, cond, noise):
        return self.denoiser.integrate(
            self.inference_scheduler, self.config.inference_steps, noise, cond
        )
