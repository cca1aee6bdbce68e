"""What every task family shares: the H and perturbation settings, reset options, the
observation dict, the fixed-camera frames and the `info` keys.

`TaskEnv` is the common base of the chain tasks, balance and MetaWorld. Its constructor is the
one signature of their settings (`task_horizon`, `perturbation`, `image`, `image_size`,
`render_mode`, `render_size`); a family declares its default H, state size and camera as class
attributes and builds its scene in `build_scene` (which sets `self.data`). It reports progress
in `self.subgoals_done`, and success is `subgoals_done >= task_horizon` everywhere.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from .rendering import FrameRenderer, fixed_camera

#: keys `reset(options=...)` accepts, so an evaluator can sweep them without remaking the env
RESET_OPTIONS = ("task_horizon", "perturbation")


def check_task_settings(task_horizon: int, perturbation: float) -> None:
    """One sentence for a task horizon or perturbation level that makes no sense."""
    if isinstance(task_horizon, bool) or not isinstance(task_horizon, int | np.integer):
        raise ValueError(f"task_horizon must be a positive integer, got {task_horizon!r}")
    if task_horizon < 1:
        raise ValueError(f"task_horizon must be a positive integer, got {task_horizon}")
    if not np.isfinite(perturbation) or perturbation < 0:
        raise ValueError(f"perturbation must be a finite number >= 0, got {perturbation!r}")


def observation_space(state_dim: int, image_size: int | None) -> spaces.Dict:
    """`state`: float32 [state_dim]; `image` (when asked for): uint8 [size, size, 3], HWC."""
    entries: dict[str, spaces.Space] = {
        "state": spaces.Box(-np.inf, np.inf, shape=(state_dim,), dtype=np.float32)
    }
    if image_size is not None:
        entries["image"] = spaces.Box(0, 255, shape=(image_size, image_size, 3), dtype=np.uint8)
    return spaces.Dict(entries)


class TaskEnv(gym.Env):
    """Settings, observation dict, frames and info shared by every family."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    data: mujoco.MjData
    #: H when the caller gives none
    default_task_horizon: int = 4
    #: size of the `state` observation
    state_dim: int = 0
    #: the fixed camera of `image` observations and videos: lookat, distance, azimuth, elevation
    camera: tuple = ((0.0, 0.0, 0.0), 1.2, 90.0, -90.0)

    def __init__(
        self,
        task_horizon: int | None = None,
        perturbation: float = 0.0,
        image: bool = False,
        image_size: int = 96,
        render_mode: str | None = None,
        render_size: int = 256,
    ):
        """`task_horizon` None: the family's `default_task_horizon`."""
        if task_horizon is None:
            task_horizon = self.default_task_horizon
        check_task_settings(task_horizon, perturbation)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task_horizon = int(task_horizon)
        self.perturbation = float(perturbation)
        self.render_mode = render_mode
        self.subgoals_done = 0
        self._image: FrameRenderer | None = None
        self._video: FrameRenderer | None = None
        model = self.build_scene()
        self.setup_cameras(model, image, image_size, render_size)

    def build_scene(self) -> mujoco.MjModel:
        """Make the family's simulation, set `self.data` and `self.action_space`, and return the
        MjModel the cameras render."""
        raise NotImplementedError

    def setup_cameras(
        self, model: mujoco.MjModel, image: bool, image_size: int, render_size: int
    ) -> None:
        """The observation space, and renderers for `image` observations and `render()`, both
        from the family's one fixed camera: the video shows what the policy saw, larger."""
        self.observation_space = observation_space(self.state_dim, image_size if image else None)
        view = fixed_camera(*self.camera)
        self._image = FrameRenderer(model, image_size, view) if image else None
        self._video = FrameRenderer(model, render_size, view) if self.render_mode else None

    def apply_reset_options(self, options: dict[str, Any] | None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; known: {list(RESET_OPTIONS)}")
        task_horizon = int(options.get("task_horizon", self.task_horizon))
        perturbation = float(options.get("perturbation", self.perturbation))
        check_task_settings(task_horizon, perturbation)
        self.task_horizon, self.perturbation = task_horizon, perturbation

    def observation(self, state: np.ndarray) -> dict[str, np.ndarray]:
        observation = {"state": np.asarray(state, dtype=np.float32)}
        if self._image is not None:
            observation["image"] = self._image.render(self.data)
        return observation

    def info(self) -> dict[str, Any]:
        return {
            "success": self.subgoals_done >= self.task_horizon,
            "subgoals_done": self.subgoals_done,
            "task_horizon": self.task_horizon,
            # chains: the share of sub-goals done; balance: the share of the horizon survived
            "score": min(self.subgoals_done / self.task_horizon, 1.0),
        }

    def render(self):
        return None if self._video is None else self._video.render(self.data)

    def close(self):
        for renderer in (self._image, self._video):
            if renderer is not None:
                renderer.close()
