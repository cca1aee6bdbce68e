"""RegressionPolicy: a residual MLP maps the observation features to the whole action chunk,
trained with an L2 loss on the normalised chunk (the DoPr paper's Humanoid setup)."""

from __future__ import annotations

import torch.nn.functional as F

from .base import Policy
from .config import PolicyConfig, ShapeMeta
from .nets import ResidualMLP


class RegressionPolicy(Policy):
    def __init__(self, config: PolicyConfig, shape_meta: ShapeMeta):
        super().__init__(config, shape_meta)
        self.chunk_shape = (config.pred_horizon, self.action_dim)
        self.net = ResidualMLP(
            self.encoder.output_dim,
            config.pred_horizon * self.action_dim,
            config.mlp_width,
            config.mlp_depth,
        )

    def loss(self, cond, actions, noise):
        loss = F.mse_loss(self.net(cond).reshape(actions.shape), actions)
        return loss, {"loss": loss.item()}

    def sample(self, cond, noise):
        return self.net(cond).reshape(cond.shape[0], *self.chunk_shape)
