"""DiffusionPolicy: DDPM training, DDIM sampling, both from diffusers.

Training: `DDPMScheduler` (100 steps, squaredcos_cap_v2, clipped samples); the network predicts
the noise (`epsilon`, diffusion_policy's default), the clean chunk (`sample`) or the velocity
(`v_prediction`, Salimans & Ho's v = sqrt(ᾱ)·ε − sqrt(1 − ᾱ)·a, the target closest to flow
matching's); MSE loss.
Inference: `DDIMScheduler` on the same schedule with `inference_steps` steps (eta = 0, so the
chunk is a deterministic function of the initial noise), placed by `ddim_spacing`: diffusers'
"leading" by default, or "trailing", which starts from the last training step, where the chunk
is pure noise as the sampler assumes (with v or sample prediction only).
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
        self.inference_scheduler = DDIMScheduler(
            **schedule, set_alpha_to_one=True, timestep_spacing=config.ddim_spacing
        )

    def loss(self, cond, actions, noise):
        epsilon = noise.randn(*actions.shape[1:])
        timesteps = noise.randint(self.config.diffusion_train_steps)
        noisy = self.train_scheduler.add_noise(actions, epsilon, timesteps)
        predicted = self.denoiser(noisy, timesteps, cond)
        loss = F.mse_loss(predicted, self._target(actions, epsilon, timesteps))
        return loss, {"loss": loss.item()}

    def _target(self, actions, epsilon, timesteps):
        kind = self.config.diffusion_prediction
        if kind == "epsilon":
            return epsilon
        if kind == "sample":
            return actions
        return self.train_scheduler.get_velocity(actions, epsilon, timesteps)

    def sample(self, cond, noise):
        return self.denoiser.integrate(
            self.inference_scheduler, self.config.inference_steps, noise, cond
        )
