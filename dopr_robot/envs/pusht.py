"""PushT (extra `pusht`: gym-pusht 0.1.8) with H = consecutive pushes, in diffusion_policy's keys.

`gym_pusht/PushT-v0` is PushT as in diffusion_policy: a disc agent (actions: absolute targets in
pixels, [0, 512]², PD-driven at 10 Hz) pushes a T-shaped block onto a fixed goal pose; an attempt
succeeds when the block covers > 95 % of the goal. The adapter makes it a chain
(`horizon_kind = "replaced-chain"`): after each success the block is re-placed at a new pose
drawn from the episode's seeded generator (uniform position in [100, 400]², uniform angle; not
touching the agent, under 50 % coverage) and the agent pushes again; the episode succeeds after
H pushes and is truncated when one push takes more than `steps_per_push` steps (default 300,
diffusion_policy's episode length). `subgoals_done` counts the pushes done. `info["score"]` is
diffusion_policy's PushT metric, the best clip(coverage / 0.95, 0, 1) of the episode, and over a
chain (pushes done + the best of the push under way) / H.

Observations, under diffusion_policy's store keys (its `pusht_cchi_v7_replay.zarr`):
- `state` float32 [5]: agent x, y, block x, y, block angle mod 2π (always);
- `agent_pos` float32 [2]: agent x, y (always);
- `block_keypoints` float32 [16]: the corners of the T's two rectangles (8 × (x, y)) in pixels
  (always). Unlike the angle in `state`, which jumps at the wrap, every value moves continuously
  with the block, so a standardised MLP input can represent it; this is the role
  diffusion_policy's low-dim `keypoint` plays, and the input the PushT recipes use;
- `img` uint8 [96, 96, 3] (with `image=True`): gym-pusht's 96-px render, HWC.
diffusion_policy's `keypoint` key ([9, 2] points from its own keypoint manager) is not produced:
a policy trained on it is refused with the key named, rather than fed different points.

How it differs from diffusion_policy's PushT (same walls, T, masses, gains, goal, threshold):
the first pose of an episode is gym-pusht's draw from `reset(seed=s)` (diffusion_policy seeds
`RandomState(seed)` and draws the angle differently, so seed s is a different layout there); the
block is placed angle first (diffusion_policy's legacy order places it elsewhere by the turn
about its centre of mass); `n_contacts` is not an observation here. `perturbation` is not
supported (0 only). Videos are gym-pusht's own rendering at `render_size` pixels.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from ..errors import UserError
from .adapter import replaced_chain_score
from .catalog import PUSHT_EXTRA
from .family import FamilyAdapter
from .pusht_expert import AGENT_RADIUS, T_CORNERS, T_RECTANGLES, to_world

STEPS_PER_PUSH = 300
#: gym-pusht's success threshold and reward scale: reward = clip(coverage / 0.95, 0, 1)
SUCCESS_COVERAGE = 0.95
#: the re-placed block must cover less than this share of the goal (a real push is needed)
MAX_START_COVERAGE = 0.5


def _pusht_env_class():
    try:
        return importlib.import_module("gym_pusht.envs.pusht").PushTEnv
    except ImportError:
        raise UserError(PUSHT_EXTRA.hint) from None


class PushTAdapter(FamilyAdapter):
    """`gym_pusht/PushT-v0` as a replaced-object chain; see the module docstring."""

    def make(
        self,
        task_horizon: int = 1,
        perturbation: float = 0.0,
        image: bool = False,
        render_mode: str | None = None,
        render_size: int = 256,
        steps_per_push: int = STEPS_PER_PUSH,
    ) -> gymnasium.Env:
        self.check_settings(task_horizon, perturbation, render_mode)
        if not isinstance(steps_per_push, int) or steps_per_push < 1:
            raise UserError(f"steps_per_push must be a positive integer, got {steps_per_push!r}")
        env_class = _pusht_env_class()
        # gym-pusht renders pixel observations through its render mode (None fails at reset)
        env = env_class(
            obs_type="pixels_agent_pos" if image else "state",
            render_mode="rgb_array" if (image or render_mode) else None,
            visualization_width=render_size,
            visualization_height=render_size,
        )
        return PushTChain(env, task_horizon, steps_per_push, image, render_mode)

    def expert(self, noise: float = 0.0, seed: int | None = None, **settings: Any):
        _pusht_env_class()  # the expert plans in gym-pusht's physics: the install hint first
        return super().expert(noise=noise, seed=seed, **settings)


class PushTChain(gymnasium.Env):
    """H pushes in one episode: the block is re-placed after each success."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, env, task_horizon: int, steps_per_push: int, image: bool, render_mode):
        self.env = env
        self.task_horizon = task_horizon
        self.steps_per_push = steps_per_push
        self.image = image
        self.render_mode = render_mode
        self.action_space = env.action_space
        entries: dict[str, spaces.Space] = {
            "state": spaces.Box(0.0, 512.0, shape=(5,), dtype=np.float32),
            "agent_pos": spaces.Box(0.0, 512.0, shape=(2,), dtype=np.float32),
            "block_keypoints": spaces.Box(-np.inf, np.inf, shape=(16,), dtype=np.float32),
        }
        if image:
            entries["img"] = spaces.Box(0, 255, shape=(96, 96, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(entries)
        self.subgoals_done = 0
        self.push_steps = 0
        #: the best reward (clip(coverage / 0.95, 0, 1)) of the push under way
        self.push_best = 0.0
        self.placements = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        observation, _ = self.env.reset(seed=seed)
        # a generator of its own, so the re-placements do not depend on gym-pusht's draws
        self.placements = np.random.default_rng(None if seed is None else [int(seed), 0x9E3779B9])
        self.subgoals_done = 0
        self.push_steps = 0
        self.push_best = 0.0
        return self._observation(observation), self._info(0.0)

    def step(self, action):
        observation, _, _, _, info = self.env.step(np.asarray(action, dtype=np.float64))
        self.push_steps += 1
        self.push_best = max(self.push_best, min(info["coverage"] / SUCCESS_COVERAGE, 1.0))
        reward = 0.0
        if info["is_success"]:
            self.subgoals_done += 1
            self.push_steps = 0
            self.push_best = 0.0
            reward = 1.0
            if self.subgoals_done < self.task_horizon:
                self._replace_block()
                observation = self.env.get_obs()
        terminated = self.subgoals_done >= self.task_horizon
        truncated = not terminated and self.push_steps >= self.steps_per_push
        return (
            self._observation(observation),
            reward,
            terminated,
            truncated,
            self._info(info["coverage"]),
        )

    def render(self):
        return self.env.render() if self.render_mode == "rgb_array" else None

    def close(self):
        self.env.close()

    # ---- helpers ----------------------------------------------------------------------------

    def state(self) -> np.ndarray:
        agent, block = self.env.agent, self.env.block
        return np.array(
            [*agent.position, *block.position, block.angle % (2 * np.pi)], dtype=np.float32
        )

    def _observation(self, observation) -> dict[str, np.ndarray]:
        state = self.state()
        stored = {
            "state": state,
            "agent_pos": state[:2].copy(),
            "block_keypoints": block_keypoints(self.env.block),
        }
        if self.image:
            stored["img"] = np.asarray(observation["pixels"], dtype=np.uint8)
        return stored

    def _info(self, coverage: float) -> dict[str, Any]:
        return {
            "success": self.subgoals_done >= self.task_horizon,
            "subgoals_done": self.subgoals_done,
            "coverage": float(coverage),
            # diffusion_policy's PushT score (the episode's best clip(coverage / 0.95, 0, 1)),
            # over a chain: (pushes done + the best of the push under way) / H
            "score": replaced_chain_score(self.subgoals_done, self.push_best, self.task_horizon),
        }

    def _replace_block(self) -> None:
        """A new seeded pose away from the agent and the goal; velocities zeroed."""
        agent = Point(*self.env.agent.position)
        for _ in range(1000):
            pose = np.array(
                [
                    self.placements.uniform(100, 400),
                    self.placements.uniform(100, 400),
                    self.placements.uniform(-np.pi, np.pi),
                ]
            )
            block = unary_union([Polygon(to_world(r, pose)) for r in T_RECTANGLES])
            if block.distance(agent) > AGENT_RADIUS + 5 and _coverage(self.env, pose) < (
                MAX_START_COVERAGE
            ):
                break
        body = self.env.block
        body.angle = float(pose[2])  # angle first: the block turns about its centre of mass
        body.position = (float(pose[0]), float(pose[1]))
        body.velocity, body.angular_velocity = (0.0, 0.0), 0.0
        self.env.space.reindex_shapes_for_body(body)


def block_keypoints(block) -> np.ndarray:
    """The corners of the T's two rectangles in world pixels, flattened (x0, y0, x1, ...)."""
    pose = np.array([*block.position, block.angle], dtype=np.float64)
    return to_world(T_CORNERS, pose).astype(np.float32).reshape(-1)


def _coverage(env, pose: np.ndarray) -> float:
    goal = unary_union([Polygon(to_world(r, env.goal_pose)) for r in T_RECTANGLES])
    block = unary_union([Polygon(to_world(r, pose)) for r in T_RECTANGLES])
    return float(goal.intersection(block).area / goal.area)
