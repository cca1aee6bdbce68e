"""The env families the toolkit ships: one `EnvFamily` record each, and every table derived
from them (the ids, the perturbation levels, the gymnasium registration, `dopr-robot envs`).

A new family is one record in `FAMILIES` (and the modules it names); nothing else lists ids.

Perturbation levels: the process-noise σ at which the family's expert still succeeds >= 99 % at
the longest horizon the toolkit evaluates (chains H = 16, balance H = 2000), measured by
`bench/env_speed.py`, while a cloned policy's errors compound; units are in each family's module.
"""

from __future__ import annotations

import gymnasium

from .family import EnvFamily, Extra

BUILTIN_ADAPTER = "dopr_robot.envs.builtin:BuiltinAdapter"
ROBOSUITE_ADAPTER = "dopr_robot.envs.robosuite_tasks:RobosuiteAdapter"

METAWORLD_EXTRA = Extra(
    "metaworld", "metaworld", 'MetaWorld is not installed; pip install "dopr-robot[metaworld]"'
)
PUSHT_EXTRA = Extra("pusht", "gym_pusht", 'PushT needs gym-pusht; pip install "dopr-robot[pusht]"')
ROBOSUITE_EXTRA = Extra(
    "robosuite",
    "robosuite",
    'robosuite tasks need robosuite 1.4.1; pip install "dopr-robot[robosuite]"',
)
#: robomimic's low-dim keys, then their concatenation (what the robosuite experts read)
ROBOSUITE_KEYS = (
    "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object", "object_6d", "state",
)  # fmt: skip

FAMILIES = (
    EnvFamily(
        env_id="dopr_robot/ReachChain-v0",
        name="ReachChain",
        horizon_kind="native-chain",
        counts="targets touched in order (3-link arm)",
        adapter=BUILTIN_ADAPTER,
        env="dopr_robot.envs.reach_chain:ReachChainEnv",
        expert="dopr_robot.envs.reach_chain:ReachChainExpert",
        perturbation=1.0,  # N·m on each joint
    ),
    EnvFamily(
        env_id="dopr_robot/PushChain-v0",
        name="PushChain",
        horizon_kind="native-chain",
        counts="goals the puck is pushed through",
        adapter=BUILTIN_ADAPTER,
        env="dopr_robot.envs.push_chain:PushChainEnv",
        expert="dopr_robot.envs.push_chain:PushChainExpert",
        perturbation=0.5,  # N on each slide joint of pusher and puck
    ),
    EnvFamily(
        env_id="dopr_robot/Balance-v0",
        name="Balance",
        horizon_kind="step-budget",
        counts="control steps survived",
        adapter=BUILTIN_ADAPTER,
        env="dopr_robot.envs.balance:BalanceEnv",
        expert="dopr_robot.envs.balance:BalanceExpert",
        perturbation=0.4,  # N·m on each hinge
    ),
    EnvFamily(
        env_id="dopr_robot/MetaWorld-v0",
        name="MetaWorld",
        horizon_kind="step-budget",
        counts="steps allowed for the task (task=)",
        adapter=BUILTIN_ADAPTER,
        env="dopr_robot.envs.metaworld_task:MetaWorldEnv",
        expert="dopr_robot.envs.metaworld_task:MetaWorldExpert",
        # N on the gripper; weak, the arm is mocap-driven: reach/push/pick-place 20/20 at H = 300
        perturbation=10.0,
        extra=METAWORLD_EXTRA,
        expert_settings=(("task", "reach-v3"),),
    ),
    EnvFamily(
        env_id="gym_pusht/PushT-v0",
        name="PushT",
        horizon_kind="replaced-chain",
        counts="pushes, the T re-placed after each",
        adapter="dopr_robot.envs.pusht:PushTAdapter",
        expert="dopr_robot.envs.pusht_expert:PushTExpert",
        extra=PUSHT_EXTRA,
        observation_keys=("state", "agent_pos", "block_keypoints"),
        image_keys=("img",),
    ),
    EnvFamily(
        env_id="robosuite/Lift",
        name="robosuite",
        horizon_kind="replaced-chain",
        counts="lifts, the cube re-placed after each",
        adapter=ROBOSUITE_ADAPTER,
        expert="dopr_robot.envs.robosuite_expert:LiftExpert",
        extra=ROBOSUITE_EXTRA,
        observation_keys=ROBOSUITE_KEYS,
        image_keys=("agentview_image",),
    ),
    EnvFamily(
        env_id="robosuite/Stack",
        name="robosuite",
        horizon_kind="replaced-chain",
        counts="stacks, both cubes re-placed after each",
        adapter=ROBOSUITE_ADAPTER,
        expert="dopr_robot.envs.robosuite_expert:StackExpert",
        extra=ROBOSUITE_EXTRA,
        observation_keys=ROBOSUITE_KEYS,
        image_keys=("agentview_image",),
    ),
    EnvFamily(
        env_id="robosuite/PickPlaceCan",
        name="robosuite",
        horizon_kind="replaced-chain",
        counts="cans put in their bin, the can put back in its start bin after each",
        adapter=ROBOSUITE_ADAPTER,
        expert="dopr_robot.envs.robosuite_expert:PickPlaceCanExpert",
        extra=ROBOSUITE_EXTRA,
        observation_keys=ROBOSUITE_KEYS,
        image_keys=("agentview_image",),
    ),
    EnvFamily(
        env_id="robosuite/NutAssemblySquare",
        name="robosuite",
        horizon_kind="replaced-chain",
        counts="square nuts put on the square peg, the nut put back on the table after each",
        adapter=ROBOSUITE_ADAPTER,
        expert="dopr_robot.envs.robosuite_expert:NutAssemblySquareExpert",
        extra=ROBOSUITE_EXTRA,
        observation_keys=ROBOSUITE_KEYS,
        image_keys=("agentview_image",),
    ),
)

FAMILY_OF = {family.env_id: family for family in FAMILIES}
#: every id the catalog knows, in listing order
KNOWN_IDS = tuple(FAMILY_OF)
#: the toolkit's own envs, registered with gymnasium when `dopr_robot.envs` is imported
ENV_IDS = tuple(family.env_id for family in FAMILIES if family.env is not None)
#: the documented process-noise σ of each family that has a perturbation setting
PERTURBATION_LEVELS = {
    family.env_id: family.perturbation for family in FAMILIES if family.perturbation is not None
}
#: robomimic's tasks on robosuite (a converted robomimic dataset names one of them)
ROBOSUITE_IDS = tuple(family.env_id for family in FAMILIES if family.adapter == ROBOSUITE_ADAPTER)


def register_with_gymnasium() -> None:
    """Register the toolkit's own envs, so `gymnasium.make(id, task_horizon=H)` works."""
    for family in FAMILIES:
        if family.env is not None and family.env_id not in gymnasium.registry:
            gymnasium.register(family.env_id, entry_point=family.env)
