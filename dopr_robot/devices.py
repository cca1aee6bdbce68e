"""`--device auto|cpu|cuda|cuda:N` to a torch device, for training and evaluation alike."""

from __future__ import annotations

import torch

from .errors import UserError


def resolve_device(name: str) -> torch.device:
    """auto is CUDA when it is available, else CPU; asking for CUDA without it is one sentence."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but CUDA is not available")
    return torch.device(name)
