"""The shared machinery of the chain tasks: H sub-goals in order, a budget that grows with H.

A chain task is a MuJoCo scene plus a sequence of H goals sampled at reset. The active goal is in
the observation (and drawn as a marker); reaching it activates the next one. The episode succeeds
when all H are reached, and is truncated when the budget of `steps_per_subgoal * H` control steps
runs out. Small errors compound: a policy that reaches one goal with probability p reaches H of
them with about p**H, which is what the toolkit measures.

Subclasses (`ReachChainEnv`, `PushChainEnv`) supply the scene XML, how a layout is sampled, how an
action becomes actuator controls, the low-dimensional state, and when a goal counts as reached.

Process noise (`perturbation`, σ): every control step each perturbed degree of freedom gets an
independent N(0, σ²) generalised force (N or N·m), held for that step. It is drawn from the env's
seeded generator, so a seeded episode is reproducible for a given action sequence.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces

from .task import TaskEnv


class ChainTaskEnv(TaskEnv):
    """Base class of the chain tasks; see the module docstring for the contract."""

    #: MJCF of the scene; it must contain a mocap body named "goal" (the active goal's marker).
    xml: str = ""
    #: physics steps per control step
    frame_skip: int = 5
    #: control steps of budget per sub-goal
    steps_per_subgoal: int = 80
    #: action dimension; actions live in [-1, 1]^action_dim and are clipped there
    action_dim: int = 2
    #: degrees of freedom that process noise pushes on
    perturbed_dofs: tuple[int, ...] = ()

    def build_scene(self) -> mujoco.MjModel:
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        self.dt = self.model.opt.timestep * self.frame_skip
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.dt))}
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.action_dim,), dtype=np.float32)
        self._goal_mocap = int(self.model.body("goal").mocapid[0])
        self.goals = np.zeros((0, 2))
        self.elapsed_steps = 0
        self._ended = False
        return self.model

    # ---- what a family supplies -------------------------------------------------------------

    def sample_layout(self, rng: np.random.Generator, task_horizon: int) -> np.ndarray:
        """Set the initial qpos/qvel in `self.data` and return the [H, 2] goal sequence."""
        raise NotImplementedError

    def apply_action(self, action: np.ndarray) -> None:
        """Write actuator controls for an action in [-1, 1]^action_dim."""
        raise NotImplementedError

    def state(self) -> np.ndarray:
        """The low-dimensional observation [state_dim] (returned as float32)."""
        raise NotImplementedError

    def goal_reached(self) -> bool:
        raise NotImplementedError

    # ---- gymnasium API ----------------------------------------------------------------------

    @property
    def goal(self) -> np.ndarray:
        """The active goal (the last one once all are done)."""
        return self.goals[min(self.subgoals_done, len(self.goals) - 1)]

    @property
    def max_episode_steps(self) -> int:
        return self.steps_per_subgoal * self.task_horizon

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.apply_reset_options(options)
        mujoco.mj_resetData(self.model, self.data)
        self.goals = np.asarray(
            self.sample_layout(self.np_random, self.task_horizon), dtype=np.float64
        )
        self.subgoals_done = 0
        self.elapsed_steps = 0
        self._ended = False
        self._place_marker()
        mujoco.mj_forward(self.model, self.data)
        return self.observation(self.state()), self.info()

    def step(self, action):
        if not self.goals.size or self._ended:
            raise RuntimeError("the episode has ended (or not begun); call reset()")
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if action.shape != (self.action_dim,):
            raise ValueError(f"action must have shape ({self.action_dim},), got {action.shape}")
        self.apply_action(action)
        self.data.qfrc_applied[:] = 0.0
        if self.perturbation > 0 and self.perturbed_dofs:
            noise = self.np_random.normal(0.0, self.perturbation, size=len(self.perturbed_dofs))
            self.data.qfrc_applied[list(self.perturbed_dofs)] = noise
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self.elapsed_steps += 1
        reward = 0.0
        if self.subgoals_done < self.task_horizon and self.goal_reached():
            self.subgoals_done += 1
            reward = 1.0
            self._place_marker()
            mujoco.mj_forward(self.model, self.data)
        terminated = self.subgoals_done >= self.task_horizon
        truncated = not terminated and self.elapsed_steps >= self.max_episode_steps
        self._ended = terminated or truncated
        return self.observation(self.state()), reward, terminated, truncated, self.info()

    # ---- helpers ----------------------------------------------------------------------------

    def _place_marker(self) -> None:
        self.data.mocap_pos[self._goal_mocap, :2] = self.goal
