"""The env adapter contract: what the collector and the evaluator need from any environment.

This module is the contract only: it names no adapter. Which adapter serves an id is
`registry.resolve_env`; the toolkit's own families are records in `catalog.py`.

An adapter turns an env id the user typed into environments that speak the toolkit's protocol,
so nothing downstream branches on an id:

- `make(task_horizon=H, perturbation=σ, image=False, render_mode=None, **settings)` returns a
  gymnasium env whose observations are dicts keyed by *store keys* (the names a demonstration
  store uses: `state`, `image`, `img`, ...; float32 vectors, uint8 HWC images), whose
  `reset(seed=s)` fixes the episode's layout, whose `info` carries `success` (bool) and
  `subgoals_done` (int) on every step, and whose `render()` returns an RGB frame when made with
  `render_mode="rgb_array"`.
- `expert(noise, seed, **settings)` returns the scripted expert that makes demonstrations
  offline (`envs.experts.Expert`), or raises `UserError` when the env has none.
- `check(**make_kwargs)` makes one env and steps it once, so whatever the env lacks (a success
  signal, an observation key) is one sentence before any work starts, not a failed episode.
- `horizon_kind` says what H counts, one of `HORIZON_KINDS`:

  native-chain     the env's own sub-goal chain: H goals in order (the built-in chain families)
  replaced-chain   H successes in one episode: after each success the adapter re-places the
                   objects at a new seeded pose and the task starts again (PushT)
  step-budget      H bounds time: the episode succeeds if the env reports success within its
                   budget (balance: survive H steps; MetaWorld and any other gymnasium env: H
                   budgets of `steps_per_horizon` steps)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from ..errors import UserError

#: the vocabulary of what H counts (an adapter's `horizon_kind`; see the module docstring)
HORIZON_KINDS = ("native-chain", "replaced-chain", "step-budget")


class EnvAdapter:
    """Base class: one env id, made into protocol-speaking envs; see the module docstring."""

    #: what H counts for this env, one of HORIZON_KINDS
    horizon_kind = "step-budget"
    #: whether `make(image=True)` adds camera observations (a user's env has its own, or none)
    has_image_switch = True

    def __init__(self, env_id: str):
        self.env_id = env_id

    def make(self, **kwargs: Any) -> gymnasium.Env:
        raise NotImplementedError

    def expert(self, noise: float = 0.0, seed: int | None = None, **settings: Any):
        raise UserError(
            f"{self.env_id} has no scripted expert; its demonstrations must come from a file"
        )

    def check_settings(self, task_horizon: Any, perturbation: float, render_mode: Any) -> None:
        """What adapters without process noise share: a positive integer H, a headless render
        mode, and perturbation 0."""
        check_render_mode(render_mode)
        if perturbation:
            raise UserError(f"{self.env_id} has no perturbation setting; use perturbation 0")
        if isinstance(task_horizon, bool) or not isinstance(task_horizon, int) or task_horizon < 1:
            raise UserError(f"task_horizon must be a positive integer, got {task_horizon!r}")

    def check(self, **make_kwargs: Any) -> None:
        """Make, reset and step one env; whatever it lacks is one sentence (see `probe`)."""
        self.probe(**make_kwargs)

    def probe(self, **make_kwargs: Any) -> Probe:
        """Make one env, reset it (seed 0) and step it once: a missing success signal or key is
        one sentence; returns what a caller checks a policy against."""
        env = self.make(**make_kwargs)
        try:
            observation, _ = env.reset(seed=0)
            _, _, _, _, info = env.step(env.action_space.sample())
            for key in ("success", "subgoals_done"):
                if key not in info:
                    raise UserError(f"{self.env_id} does not report info[{key!r}]")
            shapes = {key: tuple(np.shape(value)) for key, value in observation.items()}
            fps = int(env.metadata.get("render_fps", 20))
            return Probe(shapes, tuple(env.action_space.shape or ()), fps)
        finally:
            env.close()


@dataclass(frozen=True)
class Probe:
    """What one made env showed: observation shapes by store key, action shape, frame rate."""

    observation_shapes: dict[str, tuple[int, ...]]
    action_shape: tuple[int, ...]
    render_fps: int


def replaced_chain_score(successes: int, best_of_attempt: float, task_horizon: int) -> float:
    """A replaced chain's score so far: (successes + the best progress in [0, 1] of the attempt
    under way) / H, at most 1 (PushT and robosuite share it; see `horizon_kind`)."""
    return min((min(successes, task_horizon) + best_of_attempt) / task_horizon, 1.0)


def check_render_mode(render_mode: Any) -> None:
    if render_mode not in (None, "rgb_array"):
        # gymnasium.make would wrap a window around rgb_array frames; evaluation is headless
        raise UserError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
