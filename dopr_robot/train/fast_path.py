"""The trainer's fast path: what `fast_path` and `bf16` switch, in one place.

`fast_path = true` (default): AdamW (plain, or the GP stage of DoPr/Muon) runs torch's fused
kernel, one call per step for all parameters, instead of about ten per-tensor ops per parameter
(plain AdamW through `optim.FusedAdamW`, which also keeps the kernel's lists between steps);
and the U-Net's large Conv1d kernels get their weight gradient by one GEMM (see
`policies/nets/conv.py`). Both compute the same sums in another order: a seed still gives the
same numbers run after run, and one step agrees with `fast_path = false` (plain eager PyTorch,
which reproduces runs trained before the fast path existed) to float32 rounding; over a run the
two drift apart as runs on two machines do (Adam turns rounding in a near-zero gradient into a
full ±lr step), so they are not bitwise equal.

`bf16 = true`: autocast the forward and loss to bf16 on CUDA, and on a CPU with native bf16
instructions; on a CPU without them bf16 is emulated and slower than float32, so it is refused.

Not part of it, measured on the 2-core build CPU (docs/design.md, "The fast path"): torch.compile
of the denoiser (the study's MLP step no faster after 14 s of compiling; diffusion_policy's U-Net
1.07x after about 100 s) and bf16 by default (no gain on small networks).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..policies.nets.conv import Conv1d
from ..torch_compat import mkldnn_bf16_supported
from .config import TrainConfig


def cpu_has_native_bf16() -> bool:
    return bool(torch.backends.mkldnn.is_available() and mkldnn_bf16_supported())


def apply(policy: nn.Module, config: TrainConfig, device: torch.device) -> None:
    """Switch the policy's modules to the configured path; refuse bf16 the CPU cannot run."""
    if config.bf16 and device.type == "cpu" and not cpu_has_native_bf16():
        raise UserError(
            "bf16 = true: this CPU has no native bf16 instructions (AVX-512 BF16 or AMX), so "
            "bf16 would be emulated and slower than float32; set bf16 = false"
        )
    for module in policy.modules():
        if isinstance(module, Conv1d):
            module.gemm_weight_grad = config.fast_path


def optimizer_settings(config: TrainConfig) -> dict[str, Any]:
    """The optimizer's keyword settings: the user's, plus `fused=False` off the fast path (on
    it, the optimizers fuse by themselves where the parameters allow)."""
    settings = dict(config.optimizer_kwargs)
    if not config.fast_path and "fused" not in settings and "foreach" not in settings:
        settings["fused"] = False
    return settings
