"""Simulation and rendering speed per task family, and expert success per task horizon.

    python bench/env_speed.py [--seeds 100] [--quick] [--only PushT]

Speed (one process, single env, expert actions precomputed so only the env is timed):
- env steps/s with state observations only, and with a 96×96 `image` observation;
- frames/s of the 96×96 observation renderer alone, and of 256×256 `render()` video frames;
- the ratio of state-only to image steps/s (how much rendering slows collection).
Goal: at least 300 frames/s at 96×96 here, so rendering does not dominate collection.

Expert success: episodes succeeded / run at each H, with no process noise and at the documented
`PERTURBATION_LEVELS` (chains up to H = 16, balance up to H = 2000), episode seeds 0..N-1.
With the metaworld extra installed, MetaWorld's reach/push/pick-place are measured too (H = 300);
with the pusht extra, gym_pusht/PushT-v0 (H = consecutive pushes, no perturbation setting; its
expert plans each push in a simulated copy of the env, so its rate with planning is printed too);
with the robosuite extra, robosuite/Lift, Stack, PickPlaceCan and NutAssemblySquare (H = lifts /
stacks / placements, objects re-placed; images are robomimic's 84-px agentview, the "96x96"
column is 84x84 there).
Each success row ends with the rate of expert episodes, planning included (steps/s).
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
PUSHT = "gym_pusht/PushT-v0"
if importlib.util.find_spec("gym_pusht") is not None:
    SUBJECTS.append(("PushT-v0", PUSHT, {}, (1, 2, 4)))
if importlib.util.find_spec("robosuite") is not None:
    SUBJECTS.append(("robosuite Lift", "robosuite/Lift", {}, (1, 2, 4)))
    SUBJECTS.append(("robosuite Stack", "robosuite/Stack", {}, (1, 2, 4)))
    SUBJECTS.append(("robosuite PickPlaceCan", "robosuite/PickPlaceCan", {}, (1, 2, 4)))
    SUBJECTS.append(("robosuite NutAssemblySq", "robosuite/NutAssemblySquare", {}, (1, 2, 4)))
ROBOSUITE = [env_id for _, env_id, _, _ in SUBJECTS if env_id.startswith("robosuite/")]
#: the camera observation's make settings where they differ (PushT: gym-pusht's 96-px render;
#: robosuite: robomimic's 84-px agentview)
IMAGE_SETTINGS = {PUSHT: {"image": True}} | {env_id: {"image": True} for env_id in ROBOSUITE}
#: robosuite steps ~60/s (and ~8/s with a camera): its rows time at most 300 steps and run at
#: most 20 seeds per success cell, so the bench stays minutes long
SLOW = {env_id: (300, 20) for env_id in ROBOSUITE}


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
    start = time.perf_counter()
    for seed in range(seeds):
        episode, won = run_episode(env, expert, seed, seed)
        wins += won
        lengths.append(len(episode["action"]))
    rate = sum(lengths) / (time.perf_counter() - start)
    env.close()
    return wins, float(np.mean(lengths)), rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="episodes per success cell")
    parser.add_argument("--steps", type=int, default=3000, help="timed env steps per family")
    parser.add_argument("--quick", action="store_true", help="10 seeds, 500 steps")
    parser.add_argument("--only", help="measure only the families whose label contains this")
    args = parser.parse_args()
    subjects = [s for s in SUBJECTS if args.only is None or args.only in s[0]]
    if args.quick:
        args.seeds, args.steps = 10, 500
    warnings.filterwarnings("ignore", message=".*Constant.* may be too high")  # MetaWorld's

    print("speed (one env, one process; expert actions replayed)")
    for label, env_id, kwargs, _ in subjects:
        steps = min(args.steps, SLOW.get(env_id, (args.steps,))[0])
        actions = expert_actions(env_id, kwargs, steps)
        state = steps_per_second(env_id, kwargs, actions)
        image_settings = IMAGE_SETTINGS.get(env_id, {"image": True, "image_size": 96})
        image = steps_per_second(env_id, kwargs, actions, **image_settings)
        frames = render_rate(env_id, kwargs, steps // 3, 96)
        video = render_rate(env_id, kwargs, steps // 3, 256)
        print(
            f"  {label:24s} state {state:7,.0f} steps/s   with 96x96 image {image:6,.0f} steps/s"
            f" (ratio {state / image:4.1f})   frames/s 96x96 {frames:6,.0f}   256x256 {video:6,.0f}"
        )

    print("expert success (episodes won / seeds, mean episode length in steps)")
    for label, env_id, kwargs, horizons in subjects:
        levels = (0.0, envs.PERTURBATION_LEVELS[env_id]) if env_id in envs.ENV_IDS else (0.0,)
        seeds = min(args.seeds, SLOW.get(env_id, (0, args.seeds))[1])
        for perturbation in levels:
            cells, rates = [], []
            for horizon in horizons:
                wins, length, rate = success(env_id, kwargs, horizon, perturbation, seeds)
                cells.append(f"H={horizon}: {wins}/{seeds} ({length:.0f})")
                rates.append(rate)
            print(
                f"  {label:24s} perturbation {perturbation:<4} "
                + "   ".join(cells)
                + f"   expert episodes {np.mean(rates):,.0f} steps/s"
            )


if __name__ == "__main__":
    main()
