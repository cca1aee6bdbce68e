"""Every setting of a policy in one typed model, saved with each checkpoint as JSON.

The same config builds the same network, so `config.json` is all a checkpoint needs to be
rebuilt; the data's shapes (`ShapeMeta`) are recorded beside it. Types, ranges and the relations
between horizons are checked when the config is built (pydantic, see `config_io`), so a bad value
is one sentence before any network exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config_io import StrictConfig, validated

POLICY_KINDS = ("flow", "diffusion", "regression")
BACKBONES = ("mlp", "unet")
#: what settings added later meant for runs saved before them (image_norm: robomimic's
#: BatchNorm was the only encoder then)
BEFORE_THEY_EXISTED = {"image_norm": "batch"}


class PolicyConfig(StrictConfig):
    """What the policy is; one line per field says what it does."""

    kind: Literal["flow", "diffusion", "regression"] = "flow"
    """flow | diffusion | regression"""
    backbone: Literal["mlp", "unet"] = "mlp"
    """mlp (residual MLP over the flattened chunk) | unet (conditional 1-D temporal U-Net)"""
    obs_keys: list[str] = Field(default_factory=lambda: ["state"], min_length=1)
    """observation keys in the store; uint8 [H, W, 3] keys go through a robomimic VisualCore"""
    obs_horizon: int = Field(2, ge=1)
    """To: observation frames the policy conditions on"""
    pred_horizon: int = Field(16, ge=1)
    """Tp: actions predicted per chunk"""
    action_horizon: int = Field(8, ge=1)
    """Ta: actions executed per chunk (receding horizon), from index To - 1"""
    mlp_width: int = Field(256, ge=1)
    """residual MLP width"""
    mlp_depth: int = Field(3, ge=1)
    """residual MLP blocks"""
    unet_down_dims: list[int] = Field(default_factory=lambda: [64, 128, 256], min_length=1)
    """U-Net channels per level"""
    unet_kernel: int = Field(5, ge=1)
    """U-Net temporal kernel"""
    time_embed_dim: int = Field(128, ge=2)
    """size of the diffusion/flow time embedding"""
    diffusion_train_steps: int = Field(100, ge=1)
    """DDPM steps in training (squaredcos_cap_v2 schedule)"""
    diffusion_prediction: Literal["epsilon", "sample", "v_prediction"] = "epsilon"
    """epsilon | sample | v_prediction: what the diffusion network predicts (the noise, the
    clean chunk, or the velocity sqrt(ᾱ)·ε − sqrt(1 − ᾱ)·a)"""
    ddim_spacing: Literal["leading", "trailing"] = "leading"
    """where DDIM's steps sit on the training schedule: leading (diffusers' default) starts at
    T − T/steps, trailing at the last training step, whose inputs are pure noise as the
    sampler's start is (Lin et al. 2024); trailing needs v_prediction or sample (an
    ε-predictor cannot recover the chunk at that step)"""
    inference_steps: int = Field(10, ge=1)
    """DDIM steps (diffusion) or integration steps (flow) per action chunk"""
    flow_solver: Literal["euler", "heun"] = "euler"
    """euler (diffusers' FlowMatchEulerDiscreteScheduler) | heun (second order, 2 evals/step)"""
    image_feature_dim: int = Field(64, ge=1)
    """features per image key out of the VisualCore (SpatialSoftmax keypoints -> linear)"""
    crop_fraction: float = Field(0.9, gt=0, le=1)
    """random crop size as a fraction of the image side (training); center crop at inference"""
    image_norm: Literal["group", "batch"] = "group"
    """normalisation in the image encoder's ResNet: group (GroupNorm, as diffusion_policy and
    LeRobot do, because an EMA of BatchNorm statistics hurts) | batch (robomimic's own)"""
    ill_conditioning: float = Field(1.0, gt=0, allow_inf_nan=False)
    """multiply every odd-indexed low-dim input by this after normalisation (1 = standardised);
    a controlled, deliberately ill-conditioned input, the setting DoPr's theory is about"""

    @model_validator(mode="after")
    def _backbone_fits_kind(self) -> PolicyConfig:
        if self.kind == "regression" and self.backbone != "mlp":
            raise ValueError("the regression policy is a residual MLP: use backbone mlp")
        if self.ddim_spacing == "trailing" and self.diffusion_prediction == "epsilon":
            raise ValueError(
                "ddim_spacing trailing starts at pure noise, where an epsilon-predictor cannot "
                "recover the chunk: use diffusion_prediction v_prediction or sample"
            )
        return self

    @model_validator(mode="after")
    def _horizons_fit(self) -> PolicyConfig:
        """Each other, and the U-Net's halvings of time."""
        if self.obs_horizon - 1 + self.action_horizon > self.pred_horizon:
            raise ValueError(
                f"obs_horizon - 1 + action_horizon ({self.obs_horizon - 1 + self.action_horizon})"
                f" must not exceed pred_horizon ({self.pred_horizon})"
            )
        halvings = len(self.unet_down_dims) - 1
        if self.backbone == "unet" and self.pred_horizon % 2**halvings:
            raise ValueError(
                f"the U-Net halves time {halvings} times: pred_horizon "
                f"{self.pred_horizon} must be divisible by {2**halvings}"
            )
        return self

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "[policy]") -> PolicyConfig:
        return validated(cls, values, where)

    @staticmethod
    def saved_settings(saved: dict[str, Any], planned: dict[str, Any] | None = None) -> dict:
        """A checkpoint's policy settings made comparable with today's: a setting added since
        takes its old meaning (`image_norm`: robomimic's BatchNorm), and when the run has no
        image input `image_norm` changes nothing, so it takes the planned value."""
        values = {**BEFORE_THEY_EXISTED, **saved.get("policy", {})}
        shapes = saved.get("shape_meta", {}).get("obs", {})
        has_images = any(len(shapes.get(k, [])) == 3 for k in values.get("obs_keys", []))
        if planned is not None and not has_images and "image_norm" in planned:
            values["image_norm"] = planned["image_norm"]
        return values

    @classmethod
    def from_saved(cls, values: dict[str, Any]) -> PolicyConfig:
        """A checkpoint's policy settings; checkpoints written before `image_norm` existed used
        robomimic's BatchNorm, so that is what their weights need."""
        return cls.from_dict({**BEFORE_THEY_EXISTED, **values}, "checkpoint config.json [policy]")


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
