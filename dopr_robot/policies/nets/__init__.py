"""Backbones shared by the diffusion, flow and regression policies."""

from .mlp import ResidualMLP
from .unet1d import ConditionalUnet1D

__all__ = ["ConditionalUnet1D", "ResidualMLP"]
