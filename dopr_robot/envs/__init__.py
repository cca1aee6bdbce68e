"""Task families with a task-horizon knob, their scripted experts, and the env adapters.

Importing this package registers the toolkit's own ids with gymnasium, so after
`import dopr_robot.envs` (or with the `"dopr_robot.envs:ID"` form)
`gymnasium.make(ID, task_horizon=H)` works:

    dopr_robot/ReachChain-v0   planar 3-link arm touches H targets in order
    dopr_robot/PushChain-v0    planar pusher pushes a puck through H goals in order
    dopr_robot/Balance-v0      gymnasium's InvertedDoublePendulum-v5; survive H steps
    dopr_robot/MetaWorld-v0    a MetaWorld v3 task by name (`task=`); H = step budget
                               (needs the `metaworld` extra)

Every id takes `task_horizon`, `perturbation` (process noise σ), `image` (add a 96×96 `image`
observation), `render_mode="rgb_array"`; observations are dicts with a float32 `state`; `info`
has `success` and `subgoals_done`.

`make(id, ...)` and `expert_for(id, ...)` also take the ids other adapters serve
(`registry.resolve_env`): `gym_pusht/PushT-v0` (extra `pusht`), `robosuite/Lift` and
`robosuite/Stack` (extra `robosuite`), a user's `module:Class`, or any registered gymnasium id
(`module:Id` imports the module first). `adapter.py` states the contract they all follow;
`catalog.py` holds one record per family the toolkit ships (`dopr-robot envs` lists them).

`PERTURBATION_LEVELS` holds, per family, the documented noise level at which the expert still
succeeds at the longest horizon the toolkit evaluates while a cloned policy's errors compound.
"""

from __future__ import annotations

from . import rendering  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
from .adapter import HORIZON_KINDS
from .catalog import ENV_IDS, FAMILIES, PERTURBATION_LEVELS, register_with_gymnasium
from .registry import expert_for, make, resolve_env

register_with_gymnasium()

__all__ = [
    "ENV_IDS",
    "FAMILIES",
    "HORIZON_KINDS",
    "PERTURBATION_LEVELS",
    "expert_for",
    "make",
    "resolve_env",
]
