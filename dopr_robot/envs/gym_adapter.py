"""Any gymnasium env as a toolkit env: a `module:Class` or a registered id, H = a step budget.

    dopr-robot eval --checkpoint runs/x --env my_pkg.envs:MyEnv --task-horizons 1,2,4
    dopr-robot eval --checkpoint runs/x --env-import my_pkg --env MyEnv-v0

What the env must have, each checked with one sentence (`GymAdapter.check`):
- a success signal: `info["is_success"]` (gymnasium-robotics' convention), or the key named by
  the `success_key` setting, on every step;
- observations the policy can read: a `Box` becomes the store key `state` (float32); a `Dict`
  keeps its keys (float boxes as float32, uint8 images as they are, HWC);
- `render_mode="rgb_array"` among its render modes, for videos.

H is a step budget (`horizon_kind = "step-budget"`): the episode is cut after
H × `steps_per_horizon` steps (default: the registered `max_episode_steps`, else 100) and
succeeds on the first step the env reports success. An env that terminates without success ends
the episode as a failure. `subgoals_done` is 1 once it has succeeded. The episode's score is the
best value over its steps of `info[score_key]` (the `score_key` setting, `--score-key`; a key the
env never sets is one sentence), or of the reward without one. Other settings are passed to
the env's constructor. The env has no perturbation knob here, and images are the env's own.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from ..errors import UserError
from .adapter import EnvAdapter

#: steps per unit of H when the env registers no max_episode_steps
DEFAULT_STEPS_PER_HORIZON = 100


class GymAdapter(EnvAdapter):
    """A user's gymnasium env class or registered id; see the module docstring."""

    horizon_kind = "step-budget"
    has_image_switch = False

    def __init__(self, env_id: str, env_class: type | None = None, registered: str | None = None):
        super().__init__(env_id)
        self.env_class = env_class
        self.registered = registered

    def make(
        self,
        task_horizon: int = 1,
        perturbation: float = 0.0,
        image: bool = False,
        render_mode: str | None = None,
        success_key: str = "is_success",
        steps_per_horizon: int | None = None,
        score_key: str | None = None,
        **settings: Any,
    ) -> gymnasium.Env:
        self.check_settings(task_horizon, perturbation, render_mode)
        if image:
            raise UserError(
                f"{self.env_id} gives its own observations; image=True applies to the "
                "toolkit's families only"
            )
        steps = steps_per_horizon or self._registered_steps() or DEFAULT_STEPS_PER_HORIZON
        budget = int(task_horizon) * int(steps)
        kwargs = dict(settings)
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        try:
            if self.env_class is not None:
                env = self.env_class(**kwargs)
            else:
                env = gymnasium.make(self.registered, max_episode_steps=budget, **kwargs)
        except (TypeError, ValueError) as error:
            raise UserError(f"cannot make {self.env_id}: {error}") from None
        modes = env.metadata.get("render_modes", [])
        if render_mode is not None and render_mode not in modes:
            env.close()
            raise UserError(
                f"{self.env_id} cannot render rgb_array frames (its render modes: {modes}); "
                "videos need them"
            )
        return StepBudgetTask(env, self.env_id, budget, success_key, score_key)

    def _registered_steps(self) -> int | None:
        if self.registered is None:
            return None
        return gymnasium.registry[self.registered].max_episode_steps


class StepBudgetTask(gymnasium.Wrapper):
    """The protocol around an env: store-keyed dict observations, success, a step budget."""

    def __init__(
        self,
        env: gymnasium.Env,
        env_id: str,
        budget: int,
        success_key: str,
        score_key: str | None = None,
    ):
        super().__init__(env)
        self.env_id = env_id
        self.budget = budget
        self.success_key = success_key
        self.score_key = score_key
        self.observation_space = store_space(env.observation_space, env_id)
        self.elapsed_steps = 0
        #: the episode's best value of info[score_key] (or of the reward, without a key)
        self.best = -np.inf

    def observation(self, observation) -> dict[str, np.ndarray]:
        if isinstance(self.env.observation_space, spaces.Dict):
            return {key: _as_stored(observation[key]) for key in self.observation_space}
        return {"state": np.asarray(observation, dtype=np.float32).reshape(-1)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        observation, _ = self.env.reset(seed=seed, options=options)
        self.elapsed_steps = 0
        self.best = -np.inf
        return self.observation(observation), {"success": False, "subgoals_done": 0, "score": 0.0}

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.elapsed_steps += 1
        if self.success_key not in info:
            raise UserError(
                f"{self.env_id} does not report info[{self.success_key!r}]; name its success "
                "key with --success-key"
            )
        if self.score_key is not None and self.score_key not in info:
            raise UserError(
                f"{self.env_id} does not report info[{self.score_key!r}]; name a key it sets "
                "with --score-key, or leave it out to score by the episode's best reward"
            )
        value = float(reward if self.score_key is None else info[self.score_key])
        self.best = max(self.best, value)
        success = bool(info[self.success_key])
        ended = success or terminated
        truncated = not ended and (truncated or self.elapsed_steps >= self.budget)
        protocol = {"success": success, "subgoals_done": int(success), "score": self.best}
        return self.observation(observation), float(reward), ended, truncated, protocol


def store_space(space: spaces.Space, env_id: str) -> spaces.Dict:
    """The observation space under store keys: a Box is `state`, a Dict keeps its keys."""
    if isinstance(space, spaces.Box):
        size = int(np.prod(space.shape))
        return spaces.Dict({"state": spaces.Box(-np.inf, np.inf, (size,), np.float32)})
    if isinstance(space, spaces.Dict):
        entries = {}
        for key, sub in space.spaces.items():
            if not isinstance(sub, spaces.Box):
                raise UserError(f"{env_id}'s observation {key!r} is not a Box ({sub})")
            if sub.dtype == np.uint8:
                entries[key] = sub
            else:
                entries[key] = spaces.Box(-np.inf, np.inf, sub.shape, np.float32)
        return spaces.Dict(entries)
    raise UserError(f"{env_id}'s observations are neither a Box nor a Dict of Boxes ({space})")


def _as_stored(value) -> np.ndarray:
    array = np.asarray(value)
    return array if array.dtype == np.uint8 else array.astype(np.float32)
