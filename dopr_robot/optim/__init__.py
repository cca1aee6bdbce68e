"""Optimizers: DoPr (activation-wise then gradient-wise preconditioning) and its baselines.

from dopr_robot.optim import build_optimizer
opt = build_optimizer("dopr-adamw", model, lr=1e-4, weight_decay=1e-6)
"""

from .dopr import AP_DEFAULTS, DoPr
from .factory import OPTIMIZER_NAMES, build_optimizer
from .fused_adamw import FusedAdamW
from .gp import GPOptimizer

__all__ = ["AP_DEFAULTS", "DoPr", "FusedAdamW", "GPOptimizer", "OPTIMIZER_NAMES", "build_optimizer"]
