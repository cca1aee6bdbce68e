"""Every setting of a policy in one dataclass, saved with each checkpoint as JSON.

The same config builds the same network, so `config.json` is all a checkpoint needs to be
rebuilt; the data's shapes (`ShapeMeta`) are recorded beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

POLICY_KINDS = ("flow", "diffusion", "regression")
BACKBONES = ("mlp", "unet")


@dataclass
class PolicyConfig:
    """What the policy is; one line per field says what it does."""

    kind: str = "flow"
    """flow | diffusion | regression"""
    backbone: str = "mlp"
    """mlp (residual MLP over the flattened chunk) | unet (conditional 1-D temporal U-Net)"""
    obs_keys: list[str] = field(default_factory=lambda: ["state"])
    """observation keys in the store; uint8 [H, W, 3] keys go through a robomimic VisualCore"""
    obs_horizon: int = 2
    """To: observation frames the policy conditions on"""
    pred_horizon: int = 16
    """Tp: actions predicted per chunk"""
    action_horizon: int = 8
    """Ta: actions executed per chunk (receding horizon), from index To - 1"""
    mlp_width: int = 256
    """residual MLP width"""
    mlp_depth: int = 3
    """residual MLP blocks"""
    unet_down_dims: list[int] = field(default_factory=lambda: [64, 128, 256])
    """U-Net channels per level"""
    unet_kernel: int = 5
    """U-Net temporal kernel"""
    time_embed_dim: int = 128
    """size of the diffusion/flow time embedding"""
    diffusion_train_steps: int = 100
    """DDPM steps in training (squaredcos_cap_v2 schedule)"""
    diffusion_prediction: str = "epsilon"
    """epsilon | sample: what the diffusion network predicts"""
    inference_steps: int = 10
    """DDIM steps (diffusion) or integration steps (flow) per action chunk"""
    flow_solver: str = "euler"
    """euler (diffusers' FlowMatchEulerDiscreteScheduler) | heun (second order, 2 evals/step)"""
    image_feature_dim: int = 64
    """features per image key out of the VisualCore (SpatialSoftmax keypoints -> linear)"""
    crop_fraction: float = 0.9
    """random crop size as a fraction of the image side (training); center crop at inference"""
    ill_conditioning: float = 1.0
    """multiply every odd-indexed low-dim input by this after normalisation (1 = standardised);
    a controlled, deliberately ill-conditioned input, the setting DoPr's theory is about"""

    def check(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise ValueError(f"policy must be one of {', '.join(POLICY_KINDS)}, got {self.kind!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be mlp or unet, got {self.backbone!r}")
        if self.kind == "regression" and self.backbone != "mlp":
            raise ValueError("the regression policy is a residual MLP: use backbone mlp")
        if not self.obs_keys:
            raise ValueError("obs_keys must name at least one observation key")
        if min(self.obs_horizon, self.pred_horizon, self.action_horizon) < 1:
            raise ValueError("obs_horizon, pred_horizon and action_horizon must be >= 1")
        if self.obs_horizon - 1 + self.action_horizon > self.pred_horizon:
            raise ValueError(
                f"obs_horizon - 1 + action_horizon ({self.obs_horizon - 1 + self.action_horizon})"
                f" must not exceed pred_horizon ({self.pred_horizon})"
            )
        if self.backbone == "unet" and self.pred_horizon % 2 ** (len(self.unet_down_dims) - 1):
            raise ValueError(
                f"the U-Net halves time {len(self.unet_down_dims) - 1} times: pred_horizon "
                f"{self.pred_horizon} must be divisible by {2 ** (len(self.unet_down_dims) - 1)}"
            )
        if self.diffusion_prediction not in ("epsilon", "sample"):
            raise ValueError(
                f"diffusion_prediction must be epsilon or sample, got {self.diffusion_prediction!r}"
            )
        if self.flow_solver not in ("euler", "heun"):
            raise ValueError(f"flow_solver must be euler or heun, got {self.flow_solver!r}")
        if not self.ill_conditioning > 0:
            raise ValueError(f"ill_conditioning must be > 0, got {self.ill_conditioning}")
        if self.inference_steps < 1:
            raise ValueError(f"inference_steps must be >= 1, got {self.inference_steps}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PolicyConfig:
        return cls(**_known(cls, values, "policy"))


@dataclass
class ShapeMeta:
    """Per-step shapes of the data a policy was built for (checked against the data it sees)."""

    obs: dict[str, list[int]]
    action_dim: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ShapeMeta:
        obs = {key: list(shape) for key, shape in values["obs"].items()}
        return cls(obs=obs, action_dim=int(values["action_dim"]))

    def is_image(self, key: str) -> bool:
        """uint8 [H, W, 3] keys are images; everything else is low-dimensional."""
        return len(self.obs[key]) == 3


def _known(cls, values: dict[str, Any], section: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {section} setting(s) {unknown}; known: {sorted(names)}")
    return dict(values)
