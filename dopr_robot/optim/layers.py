"""Layer adapters: how one module type exposes its input rows and its gradient as a matrix.

Activation-wise preconditioning treats every eligible layer as a linear map W applied to rows z:
a Linear layer to each input vector (any leading dims), a Conv layer to each unfolded input patch
(length C_in·prod(k)) — the convolution is a shared linear map on patches. An adapter knows, for
its module type, how to turn a forward input into rows [n, d] and how to view the weight gradient
as a matrix [out, d] in the same column order (plus the bias as one more column when the bias is
preconditioned with the homogeneous coordinate). The optimizer itself never looks at module types.

Decisions (documented in the README):
- ConvTranspose1d/2d are left to the base optimizer: their input-side view is a zero-stuffed,
  flipped patch whose statistic costs more than it is worth for the up-sampling layers of a U-Net.
- Grouped convolutions (groups > 1) are left to the base optimizer: each group has its own patch
  statistic, and the U-Nets this toolkit trains do not use them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LayerAdapter:
    """Base adapter: a module, its weight viewed as [out, d], and an optional bias column."""

    kind = "layer"

    def __init__(self, module: nn.Module, homogeneous: bool) -> None:
        self.module = module
        self.homogeneous = homogeneous and module.bias is not None
        weight = module.weight
        self.out_features = weight.shape[0]
        self.in_features = math.prod(weight.shape[1:])

    @property
    def dim(self) -> int:
        """Side of the factor Σ: the row length, plus one for the homogeneous coordinate."""
        return self.in_features + int(self.homogeneous)

    def params(self) -> list[torch.Tensor]:
        return [self.module.weight] + ([self.module.bias] if self.homogeneous else [])

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grad_matrix(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """[out, dim] matrix from the weight (and bias) gradients, columns ordered like rows()."""
        matrix = grads[0].reshape(self.out_features, -1)
        if self.homogeneous:
            matrix = torch.cat([matrix, grads[1].reshape(-1, 1)], dim=1)
        return matrix

    def split(self, matrix: torch.Tensor) -> list[torch.Tensor]:
        """Inverse of grad_matrix: back to the weight's (and bias's) own shapes."""
        weight = self.module.weight
        parts = [matrix[:, : self.in_features].reshape(weight.shape)]
        if self.homogeneous:
            parts.append(matrix[:, self.in_features].reshape(self.module.bias.shape))
        return parts


class LinearAdapter(LayerAdapter):
    kind = "Linear"

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, self.in_features)


class ConvAdapter(LayerAdapter):
    """Conv1d/Conv2d: rows are the unfolded patches, one per output position, in the weight's
    (C_in, *kernel) column order. Conv1d is unfolded as a Conv2d of height 1."""

    def __init__(self, module: nn.Module, homogeneous: bool) -> None:
        super().__init__(module, homogeneous)
        self.spatial = len(module.kernel_size)
        self.kind = f"Conv{self.spatial}d"

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        padding = m.padding
        if isinstance(padding, str) or m.padding_mode != "zeros":
            # 'same' and non-zero padding modes: pad exactly as the module's forward does
            mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
            x = F.pad(x, m._reversed_padding_repeated_twice, mode=mode)
            padding = (0,) * self.spatial
        if self.spatial == 1:
            x = x.unsqueeze(-2)
            kernel, dilation = (1, m.kernel_size[0]), (1, m.dilation[0])
            padding, stride = (0, padding[0]), (1, m.stride[0])
        else:
            kernel, dilation, stride = m.kernel_size, m.dilation, m.stride
        if x.dim() == 3:  # unbatched input
            x = x.unsqueeze(0)
        patches = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
        return patches.transpose(1, 2).reshape(-1, self.in_features)


def adapter_for(module: nn.Module, homogeneous: bool) -> tuple[LayerAdapter | None, str]:
    """The adapter for an eligible module, or (None, reason it is left to the base optimizer)."""
    if isinstance(module, nn.Linear):
        return LinearAdapter(module, homogeneous), ""
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return None, "transposed convolution (left to the base optimizer)"
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        if module.groups != 1:
            return None, f"grouped convolution, groups={module.groups} (left to the base optimizer)"
        return ConvAdapter(module, homogeneous), ""
    return None, ""
