"""Closed-loop evaluation speed: episodes batched across a vector env vs one at a time.

    python bench/eval_speed.py [--episodes 50] [--quick]

The default policy (FlowPolicy, residual MLP, 10 flow steps, Ta 8; untrained weights, so every
episode runs its whole budget and the work per mode is identical) on ReachChain-v0 at H = 1
(100 steps per episode). Measured: env steps per second including inference, for
- one episode at a time (robomimic's sequential rollouts: n_envs = 1),
- all episodes batched in one SyncVectorEnv (n_envs = episodes),
- the same batched in an AsyncVectorEnv (one process per env),
side by side in one process. Goal: batched >= 5x sequential.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dopr_robot.eval import PolicyAgent, episode_seeds, run_episodes
from dopr_robot.policies import PolicyConfig, ShapeMeta, build_policy

ENV = "dopr_robot/ReachChain-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=50, help="episodes per mode")
    parser.add_argument("--quick", action="store_true", help="10 episodes")
    args = parser.parse_args()
    episodes = 10 if args.quick else args.episodes
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(), ShapeMeta(obs={"state": [15]}, action_dim=3))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(
        {"state": rng.normal(size=(1000, 15)), "action": rng.uniform(-1, 1, (1000, 3))}
    )
    agent = PolicyAgent(policy)
    seeds = episode_seeds("validation", episodes)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {ENV}, H = 1, "
        f"{episodes} episodes, FlowPolicy (MLP, 10 steps, Ta 8)"
    )
    rates = {}
    for name, n_envs, vector in [
        ("one at a time", 1, "sync"),
        (f"batched, {episodes} envs sync", episodes, "sync"),
        (f"batched, {episodes} envs async", episodes, "async"),
    ]:
        start = time.perf_counter()
        results = run_episodes(ENV, agent, seeds, 1, n_envs=n_envs, vector=vector)
        seconds = time.perf_counter() - start
        steps = sum(e.length for e in results)
        rates[name] = steps / seconds
        print(f"  {name:28s} {steps:6d} steps in {seconds:6.2f} s   {rates[name]:8,.0f} steps/s")
    base = rates["one at a time"]
    for name, rate in rates.items():
        if name != "one at a time":
            print(f"  ratio {name} / one at a time: {rate / base:.1f}")


if __name__ == "__main__":
    main()
