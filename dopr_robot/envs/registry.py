"""The built-in env ids, their experts and perturbation levels, and `make` / `expert_for` for
any id (through `adapter.adapter_for`).

`make` and `expert_for` turn an unknown id or a bad setting into a `UserError` sentence, so the
CLI can report it without a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium

from ..errors import UserError
from .adapter import EnvAdapter, adapter_for, check_render_mode

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


#: what H counts in each built-in family (see adapter.HORIZON_MEANINGS)
HORIZON_MEANING = {
    "dopr_robot/ReachChain-v0": "native-chain",
    "dopr_robot/PushChain-v0": "native-chain",
    "dopr_robot/Balance-v0": "step-budget",
    "dopr_robot/MetaWorld-v0": "step-budget",
}


class BuiltinAdapter(EnvAdapter):
    """The toolkit's own families: their envs already speak the protocol."""

    def __init__(self, env_id: str):
        super().__init__(env_id)
        self.horizon_meaning = HORIZON_MEANING[env_id]

    def make(self, **kwargs: Any) -> gymnasium.Env:
        check_render_mode(kwargs.get("render_mode"))
        try:
            return gymnasium.make(self.env_id, **kwargs)
        except (ValueError, TypeError) as error:
            raise UserError(f"cannot make {self.env_id}: {error}") from None

    def expert(self, noise: float = 0.0, seed: int | None = None, **settings: Any):
        module_name, class_name = EXPERTS[self.env_id].split(":")
        expert_class = getattr(importlib.import_module(module_name), class_name)
        try:
            if self.env_id == "dopr_robot/MetaWorld-v0":
                return expert_class(task=settings.get("task", "reach-v3"), noise=noise, seed=seed)
            return expert_class(noise=noise, seed=seed)
        except ValueError as error:
            raise UserError(str(error)) from None


def check_env_id(env_id: str) -> None:
    """One sentence for an id no adapter knows (resolving it imports what it names)."""
    adapter_for(env_id)


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """An env of any id that speaks the adapter protocol; one sentence for a bad id or setting."""
    return adapter_for(env_id).make(**kwargs)


def expert_for(env_id: str, noise: float = 0.0, seed: int | None = None, **env_kwargs: Any):
    """The scripted expert of an env id; one sentence when it has none."""
    return adapter_for(env_id).expert(noise=noise, seed=seed, **env_kwargs)
