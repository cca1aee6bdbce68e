"""A user's own gymnasium env, as a researcher would write it, for the adapter tests.

A point in the plane moves by its action (clipped to [-1, 1]², 0.1 per step) towards a goal drawn
at reset; `info["is_success"]` once it is within 0.05, and `info["closeness"]` = 1 - distance.
Importing the module registers it as `PointGoal-v0` (for `--env-import`); `NoSuccessEnv` reports
no success signal at all.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from dopr_robot.envs.experts import Expert


class PointGoalEnv(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None, speed: float = 0.1):
        self.render_mode = render_mode
        self.speed = speed
        self.observation_space = spaces.Box(-2.0, 2.0, shape=(4,), dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.point = np.zeros(2)
        self.goal = np.zeros(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.point = self.np_random.uniform(-1, 1, 2)
        self.goal = self.np_random.uniform(-1, 1, 2)
        return self._obs(), {"is_success": False}

    def step(self, action):
        self.point = self.point + self.speed * np.clip(action, -1, 1)
        distance = float(np.linalg.norm(self.point - self.goal))
        success = distance < 0.05
        info = {"is_success": success, "closeness": max(0.0, 1.0 - distance)}
        return self._obs(), float(success), success, False, info

    def render(self):
        frame = np.full((64, 64, 3), 255, np.uint8)
        for xy, colour in ((self.goal, (0, 160, 0)), (self.point, (0, 0, 200))):
            col, row = np.clip(((xy + 1.5) / 3 * 63).astype(int), 0, 63)
            frame[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3] = colour
        return frame

    def _obs(self):
        return np.concatenate([self.point, self.goal])


class NoSuccessEnv(PointGoalEnv):
    def step(self, action):
        observation, reward, terminated, truncated, _ = super().step(action)
        return observation, reward, terminated, truncated, {}


class PointGoalExpert(Expert):
    """Heads straight for the goal, slowing down at the end."""

    def clean_action(self, state):
        return np.clip((state[2:4] - state[:2]) / 0.1, -1, 1)


if "PointGoal-v0" not in gymnasium.registry:
    gymnasium.register("PointGoal-v0", entry_point=PointGoalEnv, max_episode_steps=40)
