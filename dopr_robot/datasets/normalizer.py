"""`Normalizer`: per-key affine maps fitted on demonstrations, kept as tensors in a state_dict.

Modes, per key (statistics per dimension of the last axis):
- "limits": [min, max] of the demonstrations → [-1, 1] (diffusion_policy's default).
- "gaussian": (x − mean) / std.
- "image": uint8 [0, 255] → float [0, 1], fixed (what robomimic's encoders expect); no statistics.

Constant and near-constant dimensions. A dimension whose demo range (limits) or std (gaussian) is
below `eps` is not scaled at all: it is only shifted (to 0), with scale 1. A tiny floor instead
(scale = 1/1e-8) turns a feature that was constant in the demos — a contact force that is zero
throughout, say — into inputs of ~1e6 the moment it moves at deployment, and that input then
decides every rollout. With scale 1, a deviation Δ at deployment enters the network as Δ.

Everything lives in buffers of the module, so the normalizer is saved and loaded with the policy
that owns it (`state_dict()` / safetensors) and moves with `.to(device)`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import DataError

MODES = ("limits", "gaussian", "image")
DEFAULT_EPS = 1e-4


class Normalizer(nn.Module):
    """Per-key normalisation: `normalize(key, x)` and its exact inverse `unnormalize(key, y)`.

    Args:
        dims: {key: size of the last axis} for "limits"/"gaussian" keys (image keys: any value).
        modes: {key: mode}; keys not named default to "limits".
        eps: range/std below which a dimension is shifted but not scaled (see the module doc).
    """

    def __init__(
        self, dims: dict[str, int], modes: dict[str, str] | None = None, eps: float = DEFAULT_EPS
    ) -> None:
        super().__init__()
        modes = dict(modes or {})
        unknown = set(modes) - set(dims)
        if unknown:
            raise DataError(f"normalizer modes name unknown keys: {sorted(unknown)}")
        self.modes = {key: modes.get(key, "limits") for key in dims}
        for key, mode in self.modes.items():
            if mode not in MODES:
                raise DataError(f"invalid normalizer mode for {key!r}: {mode!r} (expected {MODES})")
        self.eps = eps
        for key, dim in dims.items():
            size = 1 if self.modes[key] == "image" else int(dim)
            scale = torch.full((size,), 1 / 255 if self.modes[key] == "image" else 1.0)
            self.register_buffer(_name(key, "scale"), scale)
            self.register_buffer(_name(key, "offset"), torch.zeros(size))
            self.register_buffer(_name(key, "fitted"), torch.tensor(self.modes[key] == "image"))

    @property
    def keys(self) -> list[str]:
        return list(self.modes)

    def fit(self, data: dict[str, np.ndarray | torch.Tensor]) -> Normalizer:
        """Fit every non-image key from its demonstration data [..., dim]; returns self."""
        for key, mode in self.modes.items():
            if mode == "image":
                continue
            if key not in data:
                raise DataError(f"no data to fit the normalizer for {key!r}")
            values = torch.as_tensor(np.asarray(data[key]), dtype=torch.float64)
            values = values.reshape(-1, values.shape[-1])
            scale, offset = self._affine(key, values, mode)
            getattr(self, _name(key, "scale")).copy_(scale)
            getattr(self, _name(key, "offset")).copy_(offset)
            getattr(self, _name(key, "fitted")).fill_(True)
        return self

    def _affine(self, key: str, values: torch.Tensor, mode: str):
        expected = getattr(self, _name(key, "scale")).shape[0]
        if values.shape[-1] != expected:
            raise DataError(f"{key!r} has {values.shape[-1]} dimensions, expected {expected}")
        if not torch.isfinite(values).all():
            raise DataError(f"{key!r} holds NaN or Inf; the normalizer cannot be fitted")
        if mode == "limits":
            low, high = values.min(dim=0).values, values.max(dim=0).values
            spread, center = (high - low) / 2, (high + low) / 2
        else:
            spread, center = values.std(dim=0, unbiased=False), values.mean(dim=0)
        flat = spread < self.eps  # shifted, never blown up (see the module doc)
        scale = torch.where(flat, torch.ones_like(spread), 1 / spread.clamp_min(self.eps))
        return scale, -center * scale

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        scale, offset = self._params(key, x)
        if self.modes[key] == "image":
            return x.to(scale.dtype) * scale
        return x * scale + offset

    def unnormalize(self, key: str, y: torch.Tensor) -> torch.Tensor:
        scale, offset = self._params(key, y)
        if self.modes[key] == "image":
            return y / scale
        return (y - offset) / scale

    def _params(self, key: str, x: torch.Tensor):
        if key not in self.modes:
            raise DataError(f"the normalizer has no key {key!r} (keys: {', '.join(self.modes)})")
        if not bool(getattr(self, _name(key, "fitted"))):
            raise RuntimeError(f"normalizer key {key!r} was never fitted")
        dtype = x.dtype if x.is_floating_point() else torch.float32
        scale = getattr(self, _name(key, "scale")).to(device=x.device, dtype=dtype)
        offset = getattr(self, _name(key, "offset")).to(device=x.device, dtype=dtype)
        return scale, offset


def _name(key: str, what: str) -> str:
    # buffer names cannot contain dots; data keys (e.g. robomimic's) never contain "__"
    return f"{key.replace('.', '__')}__{what}"
