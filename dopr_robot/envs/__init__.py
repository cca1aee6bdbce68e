"""Task families with a task-horizon knob, their scripted experts, and the env adapters.

Importing this package registers the ids below with gymnasium, so after `import dopr_robot.envs`
(or with the `"dopr_robot.envs:ID"` form) `gymnasium.make(ID, task_horizon=H)` works:

    dopr_robot/ReachChain-v0   planar 3-link arm touches H targets in order
    dopr_robot/PushChain-v0    planar pusher pushes a puck through H goals in order
    dopr_robot/Balance-v0      gymnasium's InvertedDoublePendulum-v5; survive H steps
    dopr_robot/MetaWorld-v0    a MetaWorld v3 task by name (`task=`); H = step budget
                               (needs the `metaworld` extra)

Every id takes `task_horizon`, `perturbation` (process noise σ), `image` (add a 96×96 `image`
observation), `render_mode="rgb_array"`; observations are dicts with a float32 `state`; `info`
has `success` and `subgoals_done`.

`make(id, ...)` and `expert_for(id, ...)` also take the ids other adapters resolve
(`adapter.adapter_for`): `gym_pusht/PushT-v0` (extra `pusht`), `robosuite/Lift` and
`robosuite/Stack` (extra `robosuite`), a user's `module:Class`, or any registered gymnasium id
(`module:Id` imports the module first). `adapter.py` states the contract they all follow.

`PERTURBATION_LEVELS` holds, per family, the documented noise
level at which the expert still succeeds at the longest horizon the toolkit evaluates (measured
by `bench/env_speed.py`) while a cloned policy's errors compound.
"""

from __future__ import annotations

import gymnasium  # noqa: E402

from . import rendering  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
from .adapter import HORIZON_MEANINGS, adapter_for  # noqa: E402
from .registry import (  # noqa: E402
    ENV_IDS,
    PERTURBATION_LEVELS,
    expert_for,
    make,
)

for _env_id, _entry_point in (
    ("dopr_robot/ReachChain-v0", "dopr_robot.envs.reach_chain:ReachChainEnv"),
    ("dopr_robot/PushChain-v0", "dopr_robot.envs.push_chain:PushChainEnv"),
    ("dopr_robot/Balance-v0", "dopr_robot.envs.balance:BalanceEnv"),
    ("dopr_robot/MetaWorld-v0", "dopr_robot.envs.metaworld_task:MetaWorldEnv"),
):
    if _env_id not in gymnasium.registry:
        gymnasium.register(_env_id, entry_point=_entry_point)

__all__ = [
    "ENV_IDS",
    "HORIZON_MEANINGS",
    "PERTURBATION_LEVELS",
    "adapter_for",
    "expert_for",
    "make",
]
