"""Balance: gymnasium's own InvertedDoublePendulum-v5, where H is the number of steps to survive.

The physics, reward and fall test are gymnasium's class, unchanged: `BalanceEnv` holds one
(`env.unwrapped.pendulum`) and steps it, adding what the toolkit needs:
- `task_horizon` H: the episode succeeds when the pendulum is still up after H control steps
  (0.05 s each) and is truncated there; gymnasium's own fall test (tip below 1 m) ends it as a
  failure. `info["subgoals_done"]` counts the steps survived, so success ⟺ subgoals_done == H,
  as on the chain tasks.
- `perturbation` σ: a random torque N(0, σ²) N·m on each of the two hinges at every control step
  (the cart is not pushed). Without it, a cloned policy either balances forever or falls at once;
  with it, small errors compound over time.
- the observation dict: `state` is gymnasium's 9-dim observation as float32; `image` is a side
  view from a fixed camera.

Expert: LQR on a linearisation of the env's own step map. `mujoco.mjd_transitionFD` refuses the
env's RK4 integrator, so the step map is differentiated by central finite differences around the
upright state; the discrete algebraic Riccati equation is solved by scipy.
"""

from __future__ import annotations

import functools
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.inverted_double_pendulum_v5 import InvertedDoublePendulumEnv
from scipy.linalg import solve_discrete_are

from .experts import Expert
from .task import TaskEnv

CAMERA = ((0.0, 0.0, 0.6), 3.2, 90.0, 0.0)
HINGE_DOFS = (1, 2)


class BalanceEnv(TaskEnv):
    """See the module docstring. Composition rather than a `gym.Wrapper`, so that
    `env.unwrapped` is this class (gymnasium's checker and `unwrapped` attribute access then see
    the task's settings), while the dynamics stay those of gymnasium's own env."""

    default_task_horizon = 1000
    state_dim = 9
    camera = CAMERA

    def build_scene(self):
        self.pendulum = InvertedDoublePendulumEnv()
        self.data = self.pendulum.data
        self.action_space = self.pendulum.action_space
        self.dt = self.pendulum.dt
        model = self.pendulum.model
        model.vis.headlight.ambient[:] = 0.5  # the scene has no light of its own
        self._fallen = False
        return model

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.apply_reset_options(options)
        super().reset(seed=seed)  # seeds the process noise; the pendulum seeds its start state
        state, _ = self.pendulum.reset(seed=seed)
        self.data.qfrc_applied[:] = 0.0
        self.subgoals_done = 0
        self._fallen = False
        return self.observation(state), self.info()

    def step(self, action):
        if self._fallen or self.subgoals_done >= self.task_horizon:
            raise RuntimeError("the episode has ended; call reset()")
        self.data.qfrc_applied[:] = 0.0
        if self.perturbation > 0:
            torque = self.np_random.normal(0.0, self.perturbation, size=2)
            self.data.qfrc_applied[list(HINGE_DOFS)] = torque
        action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        state, reward, fallen, _, _ = self.pendulum.step(action)
        self._fallen = bool(fallen)
        if not fallen:
            self.subgoals_done += 1
        truncated = not fallen and self.subgoals_done >= self.task_horizon
        return self.observation(state), float(reward), bool(fallen), truncated, self.info()

    def close(self):
        super().close()
        self.pendulum.close()


def linearise_step(env: InvertedDoublePendulumEnv, eps: float = 1e-5):
    """A, B of x' = A x + B u around upright rest, x = (qpos, qvel), by central differences."""
    model, data = env.model, env.data
    nq, nv = model.nq, model.nv

    def step(x: np.ndarray, u: float) -> np.ndarray:
        data.qpos[:], data.qvel[:] = x[:nq], x[nq:]
        data.ctrl[:] = u
        data.qfrc_applied[:] = 0.0
        mujoco.mj_step(model, data, nstep=env.frame_skip)
        return np.concatenate([data.qpos, data.qvel])

    x0 = np.zeros(nq + nv)
    A = np.zeros((nq + nv, nq + nv))
    for i in range(nq + nv):
        dx = np.zeros(nq + nv)
        dx[i] = eps
        A[:, i] = (step(x0 + dx, 0.0) - step(x0 - dx, 0.0)) / (2 * eps)
    B = ((step(x0, eps) - step(x0, -eps)) / (2 * eps))[:, None]
    return A, B


def discrete_lqr(A, B, Q, R) -> np.ndarray:
    """Gain K of u = -K x: P from scipy's discrete algebraic Riccati solver, then
    K = (R + B'PB)^-1 B'PA."""
    P = solve_discrete_are(A, B, Q, R)
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


@functools.cache
def balance_gain() -> np.ndarray:
    env = InvertedDoublePendulumEnv()
    try:
        A, B = linearise_step(env)
    finally:
        env.close()
    Q = np.diag([1.0, 10.0, 10.0, 0.1, 0.1, 0.1])
    R = np.array([[0.1]])
    return discrete_lqr(A, B, Q, R)


class BalanceExpert(Expert):
    """LQR from the observation: angles from their sines and cosines, velocities as observed."""

    name = "balance_lqr"

    def __init__(self, noise: float = 0.0, seed: int | None = None):
        super().__init__(noise, seed)
        self.gain = balance_gain()

    def clean_action(self, state):
        angles = np.arctan2(state[1:3], state[3:5])
        x = np.concatenate([state[:1], angles, state[5:8]])
        return np.clip(-self.gain @ x, -1.0, 1.0)
