"""Closed-loop episodes over a gymnasium vector env, with batched planning across envs.

`run_episodes` plays one episode per seed, `n_envs` at a time, in a `SyncVectorEnv` (default;
on a small CPU inter-process copies cost more than cheap envs) or an `AsyncVectorEnv`. Autoreset
is off: when an env's episode ends, the runner resets that env alone (`reset_mask`) with the next
seed from the list, so every episode's layout is a function of its seed only. Each env keeps the
last To observations (the first one repeated at reset, as in diffusion_policy) and a queue of
planned actions; the agent is called once for all envs whose queue is empty.

An env that raises mid-episode is caught inside its own process/wrapper: that episode is recorded
with `error` set and counts as a failure, and the evaluation goes on.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from .. import envs
from .episode import Episode

PADDING = 2**32 - 1  # noise key of an env that only idles while the last episodes finish


class CatchErrors(gymnasium.Wrapper):
    """Turns an exception in `step` into the end of a failed episode, with the error in info."""

    def reset(self, **kwargs):
        self._last = self.env.reset(**kwargs)
        return self._last

    def step(self, action):
        try:
            result = self.env.step(action)
        except Exception as error:  # noqa: BLE001 - any env failure ends only this episode
            observation, info = self._last
            info = {**info, "success": False, "error": _describe(error)}
            return observation, 0.0, True, False, info
        self._last = (result[0], result[4])
        return result


def _describe(error: Exception) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__}: {error} ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})"


def _make(env_id: str, kwargs: dict[str, Any]):
    return lambda: CatchErrors(envs.make(env_id, **kwargs))


def run_episodes(
    env_id: str,
    agent,
    seeds: list[int],
    task_horizon: int,
    *,
    env_kwargs: dict[str, Any] | None = None,
    n_envs: int = 8,
    vector: str = "sync",
    progress: bool = False,
    record: bool = False,
) -> list[Episode]:
    """One episode per seed (in seed order in the result). `record=True` keeps every episode's
    `render()` frames (sync only; the envs are made with render_mode="rgb_array")."""
    if vector not in ("sync", "async"):
        raise ValueError(f"vector must be sync or async, got {vector!r}")
    if record and vector != "sync":
        raise ValueError("recording frames needs the sync vector env")
    kwargs = {**(env_kwargs or {}), "task_horizon": task_horizon}
    if record:
        kwargs["render_mode"] = "rgb_array"
    count = min(n_envs, len(seeds))
    depth = agent.obs_horizon  # observation frames the agent conditions on
    fns = [_make(env_id, kwargs) for _ in range(count)]
    vector_class = SyncVectorEnv if vector == "sync" else AsyncVectorEnv
    vec = vector_class(fns, autoreset_mode=AutoresetMode.DISABLED)
    queue = list(seeds)
    slots = [_Slot(queue.pop(0)) for _ in range(count)]
    results: dict[int, Episode] = {}

    def capture(indices) -> None:
        for i in indices:
            if record and slots[i].seed is not None:
                slots[i].frames.append((vec.envs[i].render(), slots[i].subgoals))

    bar = _bar(progress, len(seeds), task_horizon)
    try:
        observation, _ = vec.reset(seed=[slot.seed for slot in slots])
        capture(range(count))
        history = {k: np.repeat(v[:, None], depth, axis=1) for k, v in observation.items()}
        while any(slot.seed is not None for slot in slots):
            needing = [i for i in range(count) if not slots[i].plan]
            if needing:
                keys = [slots[i].noise_key() for i in needing]
                chunk = agent.plan({k: v[needing] for k, v in history.items()}, keys)
                for row, i in enumerate(needing):
                    slots[i].plan = list(chunk[row])
                    slots[i].chunks += 1
            actions = np.stack([slot.plan.pop(0) for slot in slots])
            observation, _, terminated, truncated, info = vec.step(actions)
            for i, slot in enumerate(slots):
                slot.steps += 1
                slot.subgoals = int(info["subgoals_done"][i])
            capture(range(count))
            for key, value in observation.items():
                history[key][:, :-1] = history[key][:, 1:]
                history[key][:, -1] = value
            ended = np.logical_or(terminated, truncated)
            if not ended.any():
                continue
            reset_seeds: list[int | None] = [None] * count
            for i in np.flatnonzero(ended):
                slot = slots[i]
                if slot.seed is not None:
                    results[slot.seed] = Episode(
                        seed=int(slot.seed),
                        task_horizon=task_horizon,
                        success=bool(info["success"][i]) and not _error(info, i),
                        subgoals_done=int(info["subgoals_done"][i]),
                        score=_score(info, i, task_horizon),
                        length=slot.steps,
                        seconds=time.perf_counter() - slot.started,
                        error=_error(info, i),
                        frames=slot.frames if record else None,
                    )
                    if bar is not None:
                        bar.update(1)
                slots[i] = _Slot(queue.pop(0) if queue else None)
                reset_seeds[i] = slots[i].seed
            if all(slot.seed is None for slot in slots):
                break
            observation, _ = vec.reset(seed=reset_seeds, options={"reset_mask": ended})
            for key, value in observation.items():
                history[key][ended] = np.repeat(value[ended][:, None], depth, axis=1)
            capture(np.flatnonzero(ended))
    finally:
        vec.close()
        if bar is not None:
            bar.close()
    return [results[seed] for seed in seeds]


@dataclass
class _Slot:
    """One env of the vector env and the episode it is running (seed None: idle, out of seeds)."""

    seed: int | None
    plan: list[np.ndarray] = field(default_factory=list)
    """actions planned and not executed yet"""
    steps: int = 0
    chunks: int = 0
    """plans made so far in this episode: with the seed, the key of the next plan's noise"""
    started: float = field(default_factory=time.perf_counter)
    subgoals: int = 0
    """sub-goals done so far, for the video labels"""
    frames: list[tuple[np.ndarray, int]] = field(default_factory=list)

    def noise_key(self) -> tuple[int, int]:
        return (PADDING if self.seed is None else self.seed, self.chunks)


def _score(info: dict, i: int, task_horizon: int) -> float:
    """The env's continuous score of the episode (`info["score"]`, see the env contract), or the
    share of sub-goals done for an env that reports none."""
    if "score" in info and info.get("_score", np.ones(len(info["success"]), bool))[i]:
        return float(info["score"][i])
    return min(int(info["subgoals_done"][i]) / task_horizon, 1.0)


def _error(info: dict, i: int) -> str | None:
    if "error" in info and info.get("_error", np.ones(len(info["success"]), bool))[i]:
        return str(info["error"][i]) if info["error"][i] else None
    return None


def _bar(progress: bool, total: int, task_horizon: int):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"eval H={task_horizon}", unit="episode")
