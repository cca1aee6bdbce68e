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

from .. import envs, stop
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
    fns = [_make(env_id, kwargs) for _ in range(count)]
    vector_class = SyncVectorEnv if vector == "sync" else AsyncVectorEnv
    # A stop signal is noted while the envs exist and raised between steps (`_Rollout.run`):
    # raised inside a fork or a pipe exchange with the env processes, it left them printing
    # tracebacks; forked env processes inherit the deferral and simply end with their pipes.
    with stop.deferred():
        vec = vector_class(fns, autoreset_mode=AutoresetMode.DISABLED)
        rollout = _Rollout(vec, count, agent, list(seeds), task_horizon, record)
        bar = _bar(progress, len(seeds), task_horizon)
        try:
            results = rollout.run(bar)
        finally:
            vec.close()
            if bar is not None:
                bar.close()
    stop.raise_pending()
    return [results[seed] for seed in seeds]


class _Rollout:
    """The episodes of one `run_episodes` call in flight: an env slot each, the last To
    observations of every env, the seeds still to start and the episodes finished."""

    def __init__(self, vec, count: int, agent, seeds: list[int], task_horizon: int, record: bool):
        self.vec, self.count, self.agent = vec, count, agent
        self.task_horizon, self.record = task_horizon, record
        self.depth = agent.obs_horizon  # observation frames the agent conditions on
        self.queue = seeds
        self.slots = [_Slot(self.queue.pop(0)) for _ in range(count)]
        self.results: dict[int, Episode] = {}
        self.history: dict[str, np.ndarray] = {}

    def run(self, bar) -> dict[int, Episode]:
        """Step every env until each seed has had its episode; returns them by seed."""
        observation, _ = self.vec.reset(seed=[slot.seed for slot in self.slots])
        self._capture(range(self.count))
        self.history = {k: self._repeat(v) for k, v in observation.items()}
        while any(slot.seed is not None for slot in self.slots):
            self._plan()
            actions = np.stack([slot.plan.pop(0) for slot in self.slots])
            observation, _, terminated, truncated, info = self.vec.step(actions)
            stop.raise_pending()
            self._observe(observation, info)
            ended = np.logical_or(terminated, truncated)
            if not ended.any():
                continue
            reset_seeds = self._finish(ended, info, bar)
            if all(slot.seed is None for slot in self.slots):
                break
            observation, _ = self.vec.reset(seed=reset_seeds, options={"reset_mask": ended})
            for key, value in observation.items():  # a new episode starts its history afresh
                self.history[key][ended] = self._repeat(value[ended])
            self._capture(np.flatnonzero(ended))
        return self.results

    def _repeat(self, observation: np.ndarray) -> np.ndarray:
        """An episode's first observation repeated To times, as in diffusion_policy."""
        return np.repeat(observation[:, None], self.depth, axis=1)

    def _plan(self) -> None:
        """One agent call for every env whose queue of planned actions is empty."""
        needing = [i for i in range(self.count) if not self.slots[i].plan]
        if not needing:
            return
        keys = [self.slots[i].noise_key() for i in needing]
        chunk = self.agent.plan({k: v[needing] for k, v in self.history.items()}, keys)
        for row, i in enumerate(needing):
            self.slots[i].plan = list(chunk[row])
            self.slots[i].chunks += 1

    def _observe(self, observation: dict[str, np.ndarray], info: dict) -> None:
        for i, slot in enumerate(self.slots):
            slot.steps += 1
            slot.subgoals = int(info["subgoals_done"][i])
        self._capture(range(self.count))
        for key, value in observation.items():
            self.history[key][:, :-1] = self.history[key][:, 1:]
            self.history[key][:, -1] = value

    def _finish(self, ended: np.ndarray, info: dict, bar) -> list[int | None]:
        """Record the episodes that ended and give their envs the next seeds (None: idle);
        returns the seeds to reset with, per env."""
        reset_seeds: list[int | None] = [None] * self.count
        for i in np.flatnonzero(ended):
            slot = self.slots[i]
            if slot.seed is not None:
                self.results[slot.seed] = Episode(
                    seed=int(slot.seed),
                    task_horizon=self.task_horizon,
                    success=bool(info["success"][i]) and not _error(info, i),
                    subgoals_done=int(info["subgoals_done"][i]),
                    score=_score(info, i, self.task_horizon),
                    length=slot.steps,
                    seconds=time.perf_counter() - slot.started,
                    error=_error(info, i),
                    frames=slot.frames if self.record else None,
                )
                if bar is not None:
                    bar.update(1)
            self.slots[i] = _Slot(self.queue.pop(0) if self.queue else None)
            reset_seeds[i] = self.slots[i].seed
        return reset_seeds

    def _capture(self, indices) -> None:
        """With `record`, the rendered frame of each env in `indices` running an episode."""
        for i in indices:
            if self.record and self.slots[i].seed is not None:
                self.slots[i].frames.append((self.vec.envs[i].render(), self.slots[i].subgoals))


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
