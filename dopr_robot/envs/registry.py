"""Which env ids exist, their experts, their documented perturbation levels, and `make`.

`make` and `expert_for` turn an unknown id or a bad setting into a `UserError` sentence, so the
CLI can report it without a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium

from ..errors import UserError

ENV_IDS = (
    "dopr_robot/ReachChain-v0",
    "dopr_robot/PushChain-v0",
    "dopr_robot/Balance-v0",
    "dopr_robot/MetaWorld-v0",
)

#: module:class of each id's scripted expert
EXPERTS = {
    "dopr_robot/ReachChain-v0": "dopr_robot.envs.reach_chain:ReachChainExpert",
    "dopr_robot/PushChain-v0": "dopr_robot.envs.push_chain:PushChainExpert",
    "dopr_robot/Balance-v0": "dopr_robot.envs.balance:BalanceExpert",
    "dopr_robot/MetaWorld-v0": "dopr_robot.envs.metaworld_task:MetaWorldExpert",
}

#: process-noise σ per family: the expert still succeeds >= 99 % at the longest horizon
#: (chains H = 16, balance H = 2000), measured by bench/env_speed.py; units in each module.
PERTURBATION_LEVELS = {
    "dopr_robot/ReachChain-v0": 1.0,  # N·m on each joint
    "dopr_robot/PushChain-v0": 0.5,  # N on each slide joint of pusher and puck
    "dopr_robot/Balance-v0": 0.4,  # N·m on each hinge
    # N on the gripper; weak, the arm is mocap-driven: reach/push/pick-place 20/20 at H = 300
    "dopr_robot/MetaWorld-v0": 10.0,
}


def check_env_id(env_id: str) -> None:
    if env_id not in ENV_IDS:
        raise UserError(f"unknown env id {env_id!r}; known ids: {', '.join(ENV_IDS)}")


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """`gymnasium.make` with one clear sentence for an unknown id or a bad setting."""
    check_env_id(env_id)
    render_mode = kwargs.get("render_mode")
    if render_mode not in (None, "rgb_array"):
        # gymnasium.make would wrap a window around rgb_array frames; these envs are headless
        raise UserError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    try:
        return gymnasium.make(env_id, **kwargs)
    except (ValueError, TypeError) as error:
        raise UserError(f"cannot make {env_id}: {error}") from None


def expert_for(env_id: str, noise: float = 0.0, seed: int | None = None, **env_kwargs: Any):
    """The scripted expert of an env id (MetaWorld's needs the env's `task` kwarg)."""
    check_env_id(env_id)
    module_name, class_name = EXPERTS[env_id].split(":")
    expert_class = getattr(importlib.import_module(module_name), class_name)
    try:
        if env_id == "dopr_robot/MetaWorld-v0":
            return expert_class(task=env_kwargs.get("task", "reach-v3"), noise=noise, seed=seed)
        return expert_class(noise=noise, seed=seed)
    except ValueError as error:
        raise UserError(str(error)) from None
