"""`build_optimizer(name, model, **hparams)`: every optimizer of the toolkit by name.

One place decides what each name means and its defaults, so the trainer, the study and a user's
own loop build identical optimizers. Defaults follow diffusion_policy's AdamW recipe (lr 1e-4,
betas (0.95, 0.999), weight decay 1e-6) for every name, so a comparison changes one thing only.
"""

from __future__ import annotations

import torch
from torch import nn

from .dopr import AP_DEFAULTS, DoPr
from .fused_adamw import FusedAdamW
from .gp import GPOptimizer, fusable

OPTIMIZER_NAMES = ("adamw", "muon", "sgd", "dopr-adamw", "dopr-muon", "dopr-sgd")
COMMON_DEFAULTS = dict(lr=1e-4, weight_decay=1e-6)
ADAMW_DEFAULTS = dict(betas=(0.95, 0.999), eps=1e-8)


def build_optimizer(name: str, model: nn.Module, **hparams) -> torch.optim.Optimizer:
    """Build optimizer `name` over `model`'s parameters (or `params=` groups).

    adamw -> torch.optim.AdamW: its fused kernel where the parameters allow it (unless `fused`
    or `foreach` is given), through `FusedAdamW`, which keeps the kernel's lists between steps
    (torch's numbers, less of its per-step Python); sgd -> torch.optim.SGD;
    muon -> GPOptimizer(base="muon"), i.e. torch's Muon on Linear/Conv weights and AdamW on the
    rest; dopr-X -> DoPr(base=X).
    AP settings (gamma, damping, statistic, ema_decay, update_every, max_rows, bias, conv_factor)
    are accepted by the dopr-* names only.
    """
    if name not in OPTIMIZER_NAMES:
        raise ValueError(
            f"unknown optimizer: {name!r} (expected one of {', '.join(OPTIMIZER_NAMES)})"
        )
    if not isinstance(model, nn.Module):
        raise ValueError(f"build_optimizer needs an nn.Module, got {type(model).__name__}")
    ap_keys = set(AP_DEFAULTS) & set(hparams)
    if ap_keys and not name.startswith("dopr-"):
        raise ValueError(
            f"invalid setting for {name!r}: {', '.join(sorted(ap_keys))} only apply to dopr-* names"
        )
    params = hparams.pop("params", None)
    settings = {**COMMON_DEFAULTS, **hparams}
    base = name.removeprefix("dopr-")
    if name.startswith("dopr-"):
        return DoPr(model, params, base=base, **_with_adamw_defaults(base, settings))
    if name == "muon":
        return GPOptimizer(model, params, base="muon", **_with_adamw_defaults(base, settings))
    params = model.parameters() if params is None else params
    try:
        if name == "adamw":
            params = list(params)
            if "fused" not in settings and "foreach" not in settings:
                settings["fused"] = fusable(_tensors(params))
            if settings.get("fused") is True:
                return FusedAdamW(params, **{**ADAMW_DEFAULTS, **settings})
            return torch.optim.AdamW(params, **{**ADAMW_DEFAULTS, **settings})
        return torch.optim.SGD(params, **settings)
    except TypeError as error:  # an unknown keyword, named by torch
        raise ValueError(f"invalid setting for {name!r}: {error}") from None


def _tensors(params: list) -> list[torch.Tensor]:
    """The parameters of a list of tensors or of param-group dicts."""
    return [p for item in params for p in (item["params"] if isinstance(item, dict) else [item])]


def _with_adamw_defaults(base: str, settings: dict) -> dict:
    if base == "sgd":
        return settings
    return {**ADAMW_DEFAULTS, **settings}
