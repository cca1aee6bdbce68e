"""MetaWorld (optional extra): any MetaWorld v3 task by name, H = the step budget.

Needs `pip install "dopr-robot[metaworld]"` (metaworld 3.1.1, which pins mujoco 3.3.0). The env
is MetaWorld's own goal-observable class for the task, held and stepped unchanged:
- `task_horizon` H: steps allowed; the episode succeeds (and terminates) on the first step
  MetaWorld reports `info["success"]`, and is truncated after H steps. `subgoals_done` is 1 once
  it has succeeded, else 0 (a MetaWorld task is one sub-goal; H is time, not sub-goals).
- seeded resets: the object and goal positions are drawn from the env's generator, seeded by
  `reset(seed=...)`, so the same seed gives the same layout (MetaWorld's default freezes one
  layout per env instance).
- `perturbation` σ: a random Cartesian force N(0, σ²) N on the gripper body ("hand") at every
  step, which the mocap-driven arm then has to correct.
- `state` is MetaWorld's 39-dim observation (float32); `image` is a fixed camera in front of the
  table, rendered by the toolkit's renderer (upright, unlike MetaWorld's own camera images).

Expert: MetaWorld's scripted policy for the task (`metaworld.policies.ENV_POLICY_MAP`).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
from gymnasium import spaces

from .catalog import METAWORLD_EXTRA
from .experts import Expert
from .task import TaskEnv

CAMERA = ((0.0, 0.65, 0.1), 1.4, 135.0, -30.0)


def _metaworld():
    try:
        return importlib.import_module("metaworld")
    except ImportError:
        raise ValueError(METAWORLD_EXTRA.hint) from None


def task_names() -> list[str]:
    from_registry = _metaworld().env_dict.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    return sorted(name.removesuffix("-goal-observable") for name in from_registry)


class MetaWorldEnv(TaskEnv):
    """See the module docstring."""

    default_task_horizon = 200
    state_dim = 39
    camera = CAMERA

    def __init__(self, task: str = "reach-v3", **settings: Any):
        """`task`: a MetaWorld v3 task name; `settings`: TaskEnv's."""
        self.task = task
        super().__init__(**settings)

    def build_scene(self):
        classes = _metaworld().env_dict.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
        if f"{self.task}-goal-observable" not in classes:
            known = ", ".join(task_names())
            raise ValueError(f"unknown MetaWorld task {self.task!r}; known: {known}")
        self.sawyer = classes[f"{self.task}-goal-observable"](seed=0)
        self.sawyer._freeze_rand_vec = False  # a new layout per reset, drawn from its generator
        self.sawyer.seeded_rand_vec = True
        self.sawyer.max_path_length = np.iinfo(np.int64).max  # this class truncates at H
        self.data = self.sawyer.data
        self._hand = self.sawyer.model.body("hand").id
        self.action_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.elapsed_steps = 0
        return self.sawyer.model

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.apply_reset_options(options)
        super().reset(seed=seed)
        if seed is not None:
            self.sawyer.seed(int(seed))
        self.data.xfrc_applied[:] = 0.0
        state, _ = self.sawyer.reset()
        self.subgoals_done = 0
        self.elapsed_steps = 0
        return self.observation(state), self.info()

    def step(self, action):
        if self.subgoals_done or self.elapsed_steps >= self.task_horizon:
            raise RuntimeError("the episode has ended; call reset()")
        self.data.xfrc_applied[:] = 0.0
        if self.perturbation > 0:
            force = self.np_random.normal(0.0, self.perturbation, size=3)
            self.data.xfrc_applied[self._hand, :3] = force
        action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        state, reward, _, _, sawyer_info = self.sawyer.step(action)
        self.elapsed_steps += 1
        if sawyer_info["success"]:
            self.subgoals_done = 1
        terminated = bool(self.subgoals_done)
        truncated = not terminated and self.elapsed_steps >= self.task_horizon
        return self.observation(state), float(reward), terminated, truncated, self.info()

    def info(self) -> dict[str, Any]:
        return {
            "success": bool(self.subgoals_done),
            "subgoals_done": self.subgoals_done,
            "task_horizon": self.task_horizon,
            "score": float(self.subgoals_done),  # H is a step budget: the score is success
        }

    def close(self):
        super().close()
        self.sawyer.close()


class MetaWorldExpert(Expert):
    """MetaWorld's own scripted policy for the task, reading the 39-dim state."""

    def __init__(self, task: str = "reach-v3", noise: float = 0.0, seed: int | None = None):
        super().__init__(noise, seed)
        policies = _metaworld_policies()
        if task not in policies.ENV_POLICY_MAP:
            raise ValueError(f"MetaWorld has no scripted policy for {task!r}")
        self.policy = policies.ENV_POLICY_MAP[task]()
        self.name = f"metaworld_{type(self.policy).__name__}"

    def clean_action(self, state):
        with warnings.catch_warnings():  # MetaWorld warns about its own gains on every call
            warnings.filterwarnings("ignore", message=".*Constant.* may be too high")
            return self.policy.get_action(np.asarray(state, dtype=np.float64))


def _metaworld_policies():
    _metaworld()
    return importlib.import_module("metaworld.policies")
