"""DiffusionPolicy: DDPM training, DDIM sampling, both from diffusers.

Training: `DDPMScheduler` (100 steps, squaredcos_cap_v2, clipped samples); the network predicts
the noise (`epsilon`, diffusion_policy's default) or the clean chunk (`sample`); MSE loss.
Inference: `DDIMScheduler` on the same schedule with `inference_steps` steps (eta = 0, so the
chunk is a deterministic function of the initial noise).
"""

from __future__ import annotations

import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from .base import Policy
from .config import PolicyConfig, ShapeMeta
from .denoiser import Denoiser


class DiffusionPolicy(Policy):
    def __init__(self, config: PolicyConfig, shape_meta: ShapeMeta):
        super().__init__(config, shape_meta)
        self.denoiser = Denoiser(config, self.action_dim, self.encoder.output_dim)
        schedule = dict(
            num_train_timesteps=config.diffusion_train_steps,
            beta_schedule="squaredcos_cap_v2",
            clip_sample=True,
            prediction_type=config.diffusion_prediction,
        )
        self.train_scheduler = DDPMScheduler(**schedule)
        self.inference_scheduler = DDIMScheduler(**schedule, set_alpha_to_one=True)

    def loss(self, cond, actions, noise):
        epsilon = noise.randn(*actions.shape[1:])
        timesteps = noise.randint(self.config.diffusion_train_steps)
        noisy = self.train_scheduler.add_noise(actions, epsilon, timesteps)
        predicted = self.denoiser(noisy, timesteps, cond)
        target = epsilon if self.config.diffusion_prediction == "epsilon" else actions
        loss = F.mse_loss(predicted, target)
        return loss, {"loss": loss.item()}

    def sample(self, cond, noise):
        return self.denoiser.integrate(
            self.inference_scheduler, self.config.inference_steps, noise, cond
        )
