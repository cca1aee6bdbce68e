"""Diffusion, flow and regression policies over shared backbones, encoders and normaliser.

policy = build_policy(PolicyConfig(kind="flow"), ShapeMeta(obs={"state": [9]}, action_dim=1))
"""

from .base import Policy
from .config import BACKBONES, POLICY_KINDS, PolicyConfig, ShapeMeta
from .diffusion import DiffusionPolicy
from .flow import FlowPolicy
from .noise import StepNoise
from .regression import RegressionPolicy

POLICY_CLASSES = {"flow": FlowPolicy, "diffusion": DiffusionPolicy, "regression": RegressionPolicy}


def build_policy(config: PolicyConfig, shape_meta: ShapeMeta) -> Policy:
    return POLICY_CLASSES[config.kind](config, shape_meta)


__all__ = [
    "BACKBONES",
    "POLICY_KINDS",
    "DiffusionPolicy",
    "FlowPolicy",
    "Policy",
    "PolicyConfig",
    "RegressionPolicy",
    "ShapeMeta",
    "StepNoise",
    "build_policy",
]
