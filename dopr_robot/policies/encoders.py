"""Observations -> one conditioning vector: low-dim keys flattened, image keys through robomimic.

Input: normalised observations {key: [B, To, ...]}. Low-dimensional keys are flattened over time
and concatenated. Each image key (uint8 HWC in the store, [0, 1] CHW here) goes through its own
robomimic `CropRandomizer` (random crops in training, the centre crop in eval) and `VisualCore`
(ResNet18Conv + SpatialSoftmax + linear to `image_feature_dim`), frame by frame; the features of
all frames and keys are concatenated after the low-dim ones, in `obs_keys` order.

With `image_norm="group"` (the default) every BatchNorm2d of the ResNet becomes a GroupNorm with
16 channels per group, as diffusion_policy and LeRobot do: the policy's weights are averaged by
an EMA, and an EMA of BatchNorm running statistics (or of weights trained against batch
statistics) evaluates poorly; GroupNorm has no running statistics and behaves the same in train
and eval mode.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import nn

from .config import PolicyConfig, ShapeMeta


def _robomimic_obs_core():
    """robomimic's encoders, imported without its setup banner on stdout/stderr."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from robomimic.models import obs_core
    return obs_core


def batchnorm_to_groupnorm(module: nn.Module, channels_per_group: int = 16) -> nn.Module:
    """Replace every BatchNorm2d inside `module` by a GroupNorm over the same channels."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            groups = max(1, child.num_features // channels_per_group)
            setattr(module, name, nn.GroupNorm(groups, child.num_features))
        else:
            batchnorm_to_groupnorm(child, channels_per_group)
    return module


class ImageEncoder(nn.Module):
    """One image key: crop randomizer + VisualCore, applied to every frame."""

    def __init__(
        self,
        image_shape: list[int],
        feature_dim: int,
        crop_fraction: float,
        norm: str = "group",
    ):
        super().__init__()
        obs_core = _robomimic_obs_core()
        height, width, channels = image_shape
        crop_h, crop_w = max(8, round(height * crop_fraction)), max(8, round(width * crop_fraction))
        self.crop = None  # robomimic's randomizer needs a crop strictly smaller than the image
        if crop_h < height and crop_w < width:
            self.crop = obs_core.CropRandomizer(
                input_shape=[channels, height, width], crop_height=crop_h, crop_width=crop_w
            )
        else:  # tiny images (side <= 8) or crop_fraction = 1: the whole image
            crop_h, crop_w = height, width
        with warnings.catch_warnings():  # torchvision's notice about `pretrained`
            warnings.simplefilter("ignore", UserWarning)
            self.core = obs_core.VisualCore(
                input_shape=[channels, crop_h, crop_w],
                backbone_class="ResNet18Conv",
                backbone_kwargs={"pretrained": False, "input_coord_conv": False},
                pool_class="SpatialSoftmax",
                pool_kwargs={"num_kp": 32},
                flatten=True,
                feature_dimension=feature_dim,
            )
        if norm == "group":
            batchnorm_to_groupnorm(self.core)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, To, H, W, C] in [0, 1] -> [B, To * feature_dim]."""
        batch, frames = images.shape[:2]
        x = images.flatten(0, 1).permute(0, 3, 1, 2).contiguous()
        features = self.core(x if self.crop is None else self.crop.forward_in(x))
        return features.reshape(batch, frames * features.shape[-1])


class ObservationEncoder(nn.Module):
    def __init__(self, config: PolicyConfig, shape_meta: ShapeMeta):
        super().__init__()
        self.low_dim_keys = [k for k in config.obs_keys if not shape_meta.is_image(k)]
        self.image_keys = [k for k in config.obs_keys if shape_meta.is_image(k)]
        self.images = nn.ModuleDict(
            {
                key: ImageEncoder(
                    shape_meta.obs[key],
                    config.image_feature_dim,
                    config.crop_fraction,
                    config.image_norm,
                )
                for key in self.image_keys
            }
        )
        low_dim = sum(shape_meta.obs[k][-1] for k in self.low_dim_keys)
        self.output_dim = config.obs_horizon * (
            low_dim + config.image_feature_dim * len(self.image_keys)
        )

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [obs[key].flatten(1) for key in self.low_dim_keys]
        parts += [self.images[key](obs[key]) for key in self.image_keys]
        return torch.cat(parts, dim=-1)
