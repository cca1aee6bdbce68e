"""robomimic's tasks on robosuite (extra `robosuite`: robosuite 1.4.1), H = sub-goals by re-placing.

    robosuite/Lift               pick the cube and lift it 4 cm (robosuite's success)
    robosuite/Stack              put cube A on cube B and let go
    robosuite/PickPlaceCan       put the can in its bin (bin2's quarter for it) and let go
    robosuite/NutAssemblySquare  put the square nut round the square peg and let go

(their experts, robosuite_expert.py: PickPlaceCan 50/50 at H = 1 and 20/20 at H = 2,
NutAssemblySquare 49/50 and 19/20, over seeds 0-49 and 0-19)

Why robosuite 1.4.1 and not 1.5: 1.5.2 depends on `mink`, which requires numpy < 2 (and an older
zarr) — it cannot share this stack; 1.4.1 runs on numpy 2 and mujoco 3.3.0, steps at the same
rate, and its controller configs are the format robomimic's datasets record. Its resets are
seeded through numpy's global generator; the adapter seeds it, resets, and restores it.

The env is built with `robosuite.make` (robomimic 0.3's own wrapper imports `mujoco_py`), with
robomimic's settings: Panda, OSC_POSE deltas, 20 Hz, object observations, no reward shaping.
Settings from a robomimic dataset's `env_args` (kept by `dopr-robot data convert`) rebuild the
env it was recorded in: `env_kwargs` are passed through, and its `controller_configs` must be a
1.4-format OSC config (`type`, `control_delta`, ...); a 1.5-format (composite) config is refused
with a sentence rather than run as something else (1.5 silently swallows 1.4 keys).

Observations, under robomimic's low-dim keys: `robot0_eef_pos` [3], `robot0_eef_quat` [4] (xyzw),
`robot0_gripper_qpos` [2], `object` [10 Lift | 23 Stack | 14 PickPlaceCan, NutAssemblySquare]
(robosuite's `object-state`), and
`state`, their concatenation in that order (what the scripted experts read); `object_6d`, the
`object` vector with each quaternion replaced by the first two columns of its rotation matrix (6
numbers: continuous where a quaternion is not, since q and -q are one orientation and robosuite
draws the can's and the nut's yaw over the full turn, so half the stored quaternions of a nut at
about yaw 0 read (0, 0, 0, 1) and half (0, 0, 0, -1)); with `image=True`
also `agentview_image` uint8 [84, 84, 3], upright (robosuite renders upside down).

H (`horizon_kind = "replaced-chain"`): after each success (robosuite's `_check_success`) the
objects are put back in their start region at new poses drawn from the episode's seeded generator
(robosuite_placement.py: Lift's cube within robosuite's ±3 cm; Stack's cubes within ±8 cm, 7 cm
apart; the can in bin1; the nut in its strip left of the pegs), and the task starts again; the
episode succeeds after H successes and is truncated when one takes more than `steps_per_goal`
steps (Lift 150, Stack 300, PickPlaceCan 300, NutAssemblySquare 400). `perturbation` is not
supported (0 only). `info["score"]` is (successes + the best shaped reward of the attempt under
way) / H, robosuite's own staged reward (reach, grasp, then lift or stack; lift and hover over
the bin or peg) scaled to [0, 1].
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from ..errors import UserError
from .adapter import replaced_chain_score
from .catalog import ROBOSUITE_EXTRA, ROBOSUITE_IDS
from .family import EnvFamily, FamilyAdapter
from .robosuite_placement import replace_objects

LOW_DIM_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")
CAMERA = "agentview"
IMAGE_SIZE = 84
#: per task (the part of `robosuite/<Task>` after the slash): object-state size, steps per
#: sub-goal (the catalog's record holds the rest, the expert included). PickPlaceCan's and
#: NutAssemblySquare's caps are about 1.5 x the expert's longest successful attempt over seeds
#: 0-49 at H = 1 (187 and 276 steps); robomimic's own horizon for both is 400 per episode
TASKS = {
    "Lift": {"object_dim": 10, "steps_per_goal": 150},
    "Stack": {"object_dim": 23, "steps_per_goal": 300},
    "PickPlaceCan": {"object_dim": 14, "steps_per_goal": 300},
    "NutAssemblySquare": {"object_dim": 14, "steps_per_goal": 400},
}
#: where each quaternion (xyzw) starts in a task's object-state, read from robosuite 1.4.1's
#: sensors: the cube's (Lift), both cubes' (Stack), the object's and its pose in the eef's frame
#: (PickPlaceCan, NutAssemblySquare)
QUATERNIONS = {
    "Lift": (3,), "Stack": (3, 10), "PickPlaceCan": (3, 10), "NutAssemblySquare": (3, 10),
}  # fmt: skip
#: robomimic's env_kwargs for its robosuite datasets, apart from cameras and the controller
DEFAULT_ENV_KWARGS = {
    "robots": "Panda",
    "control_freq": 20,
    "reward_shaping": False,
    "use_object_obs": True,
}


def _robosuite():
    os.environ.setdefault("MUJOCO_GL", "egl")
    # robosuite 1.4 logs a "no private macro file" warning on every import: not the user's concern
    logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
    try:
        robosuite = importlib.import_module("robosuite")
    except ImportError:
        raise UserError(ROBOSUITE_EXTRA.hint) from None
    if not robosuite.__version__.startswith("1.4."):
        raise UserError(
            f"robosuite {robosuite.__version__} is installed; the toolkit's robosuite tasks are "
            "written for 1.4.1 (1.5 needs numpy < 2); pip install robosuite==1.4.1"
        )
    return robosuite


def controller_config(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The OSC_POSE config: robosuite 1.4's default, or a dataset's, checked to be 1.4-format."""
    given = env_kwargs.get("controller_configs")
    if given is None:
        return _robosuite().load_controller_config(default_controller="OSC_POSE")
    if not isinstance(given, dict) or "type" not in given or "body_parts" in given:
        raise UserError(
            "the dataset's controller_configs are not a robosuite 1.4 controller config (a 1.5 "
            "composite config, or unknown); convert it to 1.4's OSC_POSE format"
        )
    if given["type"] != "OSC_POSE":
        raise UserError(f"robosuite tasks here use OSC_POSE; the dataset's is {given['type']!r}")
    return dict(given)


class RobosuiteAdapter(FamilyAdapter):
    """`robosuite/<Task>` as a replaced-object chain; see the module docstring."""

    def __init__(self, family: EnvFamily):
        super().__init__(family)
        self.task = family.env_id.split("/", 1)[1]

    def make(
        self,
        task_horizon: int = 1,
        perturbation: float = 0.0,
        image: bool = False,
        render_mode: str | None = None,
        render_size: int = 256,
        steps_per_goal: int | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ) -> gymnasium.Env:
        self.check_settings(task_horizon, perturbation, render_mode)
        robosuite = _robosuite()
        kwargs = {**DEFAULT_ENV_KWARGS, **(env_kwargs or {})}
        kwargs["controller_configs"] = controller_config(kwargs)
        kwargs.update(
            has_renderer=False,
            has_offscreen_renderer=bool(image or render_mode),
            use_camera_obs=bool(image),
            camera_names=CAMERA,
            camera_heights=IMAGE_SIZE,
            camera_widths=IMAGE_SIZE,
            ignore_done=True,  # the chain decides when an episode ends
            horizon=10**9,
        )
        for key in ("env_name", "type", "env_version"):
            kwargs.pop(key, None)
        try:
            env = robosuite.make(self.task, **kwargs)
        except (TypeError, ValueError, AssertionError) as error:
            raise UserError(f"cannot make {self.env_id}: {error}") from None
        steps = steps_per_goal or TASKS[self.task]["steps_per_goal"]
        return RobosuiteChain(env, self.task, task_horizon, steps, image, render_mode, render_size)


class RobosuiteChain(gymnasium.Env):
    """H successes of a robosuite task in one episode; the objects re-placed after each."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, env, task, task_horizon, steps_per_goal, image, render_mode, render_size):
        self.env, self.task = env, task
        self.task_horizon, self.steps_per_goal = task_horizon, steps_per_goal
        self.image, self.render_mode, self.render_size = image, render_mode, render_size
        low, high = env.action_spec
        self.action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32))
        object_dim = TASKS[task]["object_dim"]
        sizes = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2}
        entries: dict[str, spaces.Space] = {
            key: spaces.Box(-np.inf, np.inf, (size,), np.float32) for key, size in sizes.items()
        }
        entries["object"] = spaces.Box(-np.inf, np.inf, (object_dim,), np.float32)
        entries["state"] = spaces.Box(-np.inf, np.inf, (9 + object_dim,), np.float32)
        size_6d = object_dim + 2 * len(QUATERNIONS[task])
        entries["object_6d"] = spaces.Box(-np.inf, np.inf, (size_6d,), np.float32)
        if image:
            entries[f"{CAMERA}_image"] = spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        self.observation_space = spaces.Dict(entries)
        self.subgoals_done = self.goal_steps = 0
        #: the best shaped reward (robosuite's staged progress, in [0, 1]) of the goal under way
        self.goal_best = 0.0
        self.placements = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # robosuite 1.4 draws its layout from numpy's global generator: it is the API there
        outside = np.random.get_state()  # noqa: NPY002
        np.random.seed(None if seed is None else int(seed) % 2**32)  # noqa: NPY002
        try:
            observation = self.env.reset()
        finally:
            np.random.set_state(outside)  # noqa: NPY002
        self.placements = np.random.default_rng(None if seed is None else [int(seed), 0x5EED])
        self.subgoals_done = self.goal_steps = 0
        self.goal_best = 0.0
        return self._observation(observation), self._info()

    def step(self, action):
        observation, _, _, _ = self.env.step(np.asarray(action, dtype=np.float64))
        self.goal_steps += 1
        self.goal_best = max(self.goal_best, self._shaped_progress())
        reward = 0.0
        if self.env._check_success():
            self.subgoals_done += 1
            self.goal_steps = 0
            self.goal_best = 0.0
            reward = 1.0
            if self.subgoals_done < self.task_horizon:
                self._replace_objects()
                observation = self.env._get_observations(force_update=True)
        terminated = self.subgoals_done >= self.task_horizon
        truncated = not terminated and self.goal_steps >= self.steps_per_goal
        return self._observation(observation), reward, terminated, truncated, self._info()

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        size = self.render_size
        return self.env.sim.render(width=size, height=size, camera_name=CAMERA)[::-1].copy()

    def close(self):
        self.env.close()

    def _observation(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        stored = {key: np.asarray(raw[key], dtype=np.float32) for key in LOW_DIM_KEYS}
        stored["object"] = np.asarray(raw["object-state"], dtype=np.float32)
        stored["state"] = np.concatenate([stored[k] for k in (*LOW_DIM_KEYS, "object")])
        stored["object_6d"] = rotations_6d(stored["object"], QUATERNIONS[self.task])
        if self.image:
            stored[f"{CAMERA}_image"] = np.ascontiguousarray(raw[f"{CAMERA}_image"][::-1])
        return stored

    def _info(self) -> dict[str, Any]:
        return {
            "success": self.subgoals_done >= self.task_horizon,
            "subgoals_done": self.subgoals_done,
            # (goals done + the best shaped progress of the goal under way) / H
            "score": replaced_chain_score(self.subgoals_done, self.goal_best, self.task_horizon),
        }

    def _shaped_progress(self) -> float:
        """robosuite's own shaped reward (reach, grasp, lift / stack stages), scaled to [0, 1]
        by its reward_scale; read with shaping switched on for the call only, so the env's
        own (sparse, robomimic's) reward setting is left as it was made."""
        env = self.env
        shaping, scale = env.reward_shaping, env.reward_scale
        env.reward_shaping, env.reward_scale = True, 1.0
        try:
            return float(np.clip(env.reward(None), 0.0, 1.0))
        finally:
            env.reward_shaping, env.reward_scale = shaping, scale

    def _replace_objects(self) -> None:
        """New seeded start poses for the task's objects, at rest (robosuite_placement.py)."""
        replace_objects(self.env, self.task, self.placements)


def rotations_6d(vector: np.ndarray, starts: tuple[int, ...]) -> np.ndarray:
    """`vector` with the quaternion (xyzw) at each of `starts` replaced by the first two columns
    of its rotation matrix (Zhou et al.'s continuous 6D representation)."""
    from scipy.spatial.transform import Rotation

    pieces, at = [], 0
    for start in starts:
        pieces.append(vector[at:start])
        matrix = Rotation.from_quat(vector[start : start + 4]).as_matrix()
        pieces.append(matrix[:, :2].T.reshape(6))
        at = start + 4
    pieces.append(vector[at:])
    return np.concatenate(pieces).astype(np.float32)


def env_from_robomimic(env_args: Any) -> dict[str, Any] | None:
    """The env a converted robomimic dataset was recorded in, from its `env_args` (kept by
    `data convert`): `robosuite/<env_name>` with the recorded env_kwargs (controller config
    included, checked by the robosuite adapter), or None when the store has none."""
    if not isinstance(env_args, dict) or "env_name" not in env_args:
        return None
    env_id = f"robosuite/{env_args['env_name']}"
    if env_args.get("type", 1) != 1 or env_id not in ROBOSUITE_IDS:
        raise UserError(
            f"the demonstrations were recorded in {env_args['env_name']!r} (env type "
            f"{env_args.get('type')}); the robomimic tasks evaluated here are "
            f"{', '.join(ROBOSUITE_IDS)}"
        )
    return {"env_id": env_id, "env_kwargs": {"env_kwargs": dict(env_args.get("env_kwargs", {}))}}
