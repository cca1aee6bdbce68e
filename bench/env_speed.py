"""Simulation and rendering speed per task family, and expert success per task horizon.

    python bench/env_speed.py [--seeds 100] [--quick]

Speed (one process, single env, expert actions precomputed so only the env is timed):
- env steps/s with state observations only, and with a 96×96 `image` observation;
- frames/s of the 96×96 observation renderer alone, and of 256×256 `render()` video frames;
- the ratio of state-only to image steps/s (how much rendering slows collection).
Goal: at least 300 frames/s at 96×96 here, so rendering does not dominate collection.

Expert success: episodes succeeded / run at each H, with no process noise and at the documented
`PERTURBATION_LEVELS` (chains up to H = 16, balance up to H = 2000), episode seeds 0..N-1.
With the metaworld extra installed, MetaWorld's reach/push/pick-place are measured too (H = 300).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import warnings

import numpy as np

import dopr_robot.envs as envs
from dopr_robot.envs.collect import run_episode

# (label, env id, make kwargs, horizons for the success table)
SUBJECTS = [
    ("ReachChain-v0", "dopr_robot/ReachChain-v0", {}, (1, 2, 4, 8, 16)),
    ("PushChain-v0", "dopr_robot/PushChain-v0", {}, (1, 2, 4, 8, 16)),
    ("Balance-v0", "dopr_robot/Balance-v0", {}, (250, 500, 1000, 2000)),
]
if importlib.util.find_spec("metaworld") is not None:
    for _task in ("reach-v3", "push-v3", "pick-place-v3"):
        SUBJECTS.append((f"MetaWorld {_task}", "dopr_robot/MetaWorld-v0", {"task": _task}, (300,)))


def expert_actions(env_id: str, kwargs: dict, steps: int) -> list[np.ndarray]:
    """Actions of expert episodes, concatenated, to replay under the timer."""
    env = envs.make(env_id, task_horizon=10_000, **kwargs)
    expert = envs.expert_for(env_id, **kwargs)
    observation, _ = env.reset(seed=0)
    actions = []
    for _ in range(steps):
        actions.append(expert.act(observation))
        observation, _, terminated, truncated, _ = env.step(actions[-1])
        if terminated or truncated:
            observation, _ = env.reset()
    env.close()
    return actions


def steps_per_second(env_id: str, kwargs: dict, actions: list[np.ndarray], **extra) -> float:
    env = envs.make(env_id, task_horizon=10_000, **kwargs, **extra)
    env.reset(seed=0)
    env.step(actions[0])  # the first frame creates the GL context: not part of the rate
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    rate = len(actions) / (time.perf_counter() - start)
    env.close()
    return rate


def render_rate(env_id: str, kwargs: dict, frames: int, size: int) -> float:
    env = envs.make(env_id, render_mode="rgb_array", render_size=size, **kwargs)
    env.reset(seed=0)
    env.render()
    start = time.perf_counter()
    for _ in range(frames):
        env.render()
    rate = frames / (time.perf_counter() - start)
    env.close()
    return rate


def success(env_id, kwargs, horizon, perturbation, seeds) -> tuple[int, float]:
    env = envs.make(env_id, task_horizon=horizon, perturbation=perturbation, **kwargs)
    expert = envs.expert_for(env_id, **kwargs)
    lengths, wins = [], 0
    for seed in range(seeds):
        episode, won = run_episode(env, expert, seed, seed)
        wins += won
        lengths.append(len(episode["action"]))
    env.close()
    return wins, float(np.mean(lengths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="episodes per success cell")
    parser.add_argument("--steps", type=int, default=3000, help="timed env steps per family")
    parser.add_argument("--quick", action="store_true", help="10 seeds, 500 steps")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps = 10, 500
    warnings.filterwarnings("ignore", message=".*Constant.* may be too high")  # MetaWorld's

    print("speed (one env, one process; expert actions replayed)")
    for label, env_id, kwargs, _ in SUBJECTS:
        actions = expert_actions(env_id, kwargs, args.steps)
        state = steps_per_second(env_id, kwargs, actions)
        image = steps_per_second(env_id, kwargs, actions, image=True, image_size=96)
        frames = render_rate(env_id, kwargs, args.steps // 3, 96)
        video = render_rate(env_id, kwargs, args.steps // 3, 256)
        print(
            f"  {label:24s} state {state:7,.0f} steps/s   with 96x96 image {image:6,.0f} steps/s"
            f" (ratio {state / image:4.1f})   frames/s 96x96 {frames:6,.0f}   256x256 {video:6,.0f}"
        )

    print(f"expert success (episodes won / {args.seeds}, mean episode length in steps)")
    for label, env_id, kwargs, horizons in SUBJECTS:
        for perturbation in (0.0, envs.PERTURBATION_LEVELS[env_id]):
            cells = []
            for horizon in horizons:
                wins, length = success(env_id, kwargs, horizon, perturbation, args.seeds)
                cells.append(f"H={horizon}: {wins}/{args.seeds} ({length:.0f})")
            print(f"  {label:24s} perturbation {perturbation:<4} " + "   ".join(cells))


if __name__ == "__main__":
    main()
