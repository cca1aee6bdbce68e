"""What the `full` preset costs, measured at small scale on this machine, and its expected time.

    python bench/full_preset_costs.py [--learn-steps 200] [--workers 1,8,32]

For every task of `dopr_robot/study/presets/full.toml`, with the preset's own settings:
1. **Expert**: collects 10 demonstrations (success rate over the attempts, seconds per step).
2. **Training step** at the preset's batch (256) and widths for each policy of the task, with
   AdamW and DoPr-AdamW (the heavier of the two bases the preset pairs): seconds per step.
3. **Learns?** `--learn-steps` trainer steps at batch 64 (16 with images) on the 10
   demonstrations: the mean training loss over the first and the last tenth of them (a check
   that the settings train, not a result).
4. **Closed-loop step**: wall seconds per episode step with batched planning (8 envs, one
   policy call per chunk, an untrained policy), so an episode costs its length times that.
Then it multiplies out the preset (tuning and verdict runs x 20,000 steps; validation episodes
for every tuning run; test episodes and validation episodes at each budget checkpoint for every
verdict run; at the worst case where every episode runs its whole budget) and
prints the expected CPU time on N single-core Ray workers. GPU times are not measured here: this
machine has none.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dopr_robot.envs.collect import collect
from dopr_robot.eval.agents import PolicyAgent
from dopr_robot.eval.rollout import run_episodes
from dopr_robot.eval.seeds import episode_seeds
from dopr_robot.study.config import load_study, preset_path
from dopr_robot.study.plan import (
    cells,
    collect_config,
    compared_optimizers,
    tuning_runs,
    verdict_runs,
)
from dopr_robot.train import TrainConfig, Trainer

TIMED_STEPS = 3


def expert(task, out: Path) -> tuple[float, float]:
    settings = collect_config(task).model_copy(update={"episodes": 10})
    started = time.perf_counter()
    result = collect(settings, out, progress=False)
    seconds = time.perf_counter() - started
    return result.episodes / result.attempts, seconds / max(sum(_lengths(out)), 1)


def _lengths(store: Path) -> list[int]:
    from dopr_robot.datasets import ReplayBuffer

    return ReplayBuffer.open(store).episode_lengths.tolist()


def trainer_for(config, task, kind, store: Path, out: Path, optimizer: str, batch: int):
    train_values = {**config.train_values(task), "device": "cpu", "bf16": False}
    train = TrainConfig.from_dict(
        {
            **train_values,
            "data": str(store),
            "out": str(out),
            "optimizer": optimizer,
            "lr": 1e-3,
            "batch_size": batch,
            "val_ratio": 0.2,
        }  # fmt: skip
    )
    from dopr_robot.policies import PolicyConfig

    policy = PolicyConfig.from_dict({**config.policy_values(task), "kind": kind})
    return Trainer(train, policy, progress=False)


def step_seconds(trainer) -> float:
    trainer.train_step()  # warm-up
    started = time.perf_counter()
    for _ in range(TIMED_STEPS):
        trainer.train_step()
    return (time.perf_counter() - started) / TIMED_STEPS


def learns(trainer, steps: int) -> tuple[float, float]:
    losses = [trainer.train_step()["loss"] for _ in range(steps)]
    window = max(1, steps // 10)
    return float(np.mean(losses[:window])), float(np.mean(losses[-window:]))


def env_step_seconds(task, trainer, config) -> float:
    policy = trainer.policy.eval()
    agent = PolicyAgent(policy, execute=task.execute)
    horizon = task.horizons[0]
    seeds = episode_seeds("validation", min(config.eval_envs, 8))
    kwargs = {"perturbation": collect_config(task).perturbation, **task.env_kwargs}
    if task.image:
        kwargs["image"] = True
    started = time.perf_counter()
    episodes = run_episodes(task.env_id, agent, seeds, horizon, env_kwargs=kwargs,
                            n_envs=len(seeds))  # fmt: skip
    steps = sum(e.length for e in episodes)
    return (time.perf_counter() - started) / steps  # wall time per episode step, batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learn-steps", type=int, default=200)
    parser.add_argument("--workers", default="1,8,32", help="Ray worker counts to project")
    args = parser.parse_args()
    config = load_study(preset_path("full"))
    torch.set_num_threads(1)  # one Ray worker = one core
    print(f"torch {torch.__version__}, 1 thread (one Ray worker's share), CPU only")
    total_train = total_eval = 0.0
    tuning = tuning_runs(config)
    # the verdict runs' lr is chosen later; their number and cost do not depend on which
    verdict = verdict_runs(
        config, {(c.key, o): config.optimizers[o].lr[0] for c in cells(config)
                 for o in compared_optimizers(config)}
    )  # fmt: skip
    all_runs = tuning + verdict
    with tempfile.TemporaryDirectory() as tmp:
        for task in config.tasks:
            store = Path(tmp) / f"{task.name}.zarr"
            success, demo_step = expert(task, store)
            lengths = _lengths(store)
            print(f"\n{task.name}: expert {success:.0%} of attempts succeed at H="
                  f"{task.collect_horizon} (noise {task.noise}), {demo_step * 1e3:.2f} ms per "
                  f"collected step, episodes {min(lengths)}-{max(lengths)} steps")  # fmt: skip
            for kind in config.task_policies(task):
                costs = {}
                for optimizer in ("adamw", "dopr-adamw"):
                    out = Path(tmp) / f"{task.name}-{kind}-{optimizer}"
                    trainer = trainer_for(config, task, kind, store, out, optimizer, 256)
                    costs[optimizer] = step_seconds(trainer)
                batch = 16 if task.image else 64  # image steps are slow on one core
                small = trainer_for(
                    config,
                    task,
                    kind,
                    store,
                    Path(tmp) / f"learn-{task.name}-{kind}",
                    "adamw",
                    batch,
                )
                first, last = learns(small, args.learn_steps)
                env_step = env_step_seconds(task, small, config)
                budget = {"balance": 1, "reach": 100, "push": 100}.get(task.name, 1)
                worst = sum(h * budget for h in task.horizons)  # every episode to its budget
                task_runs = [
                    r for r in all_runs if r.cell.task == task.name and r.cell.policy == kind
                ]
                train_s = sum(
                    config.train_values(task).get("steps", 2000)
                    * costs["dopr-adamw" if config.optimizers[r.optimizer].name.startswith("dopr")
                            else "adamw"]
                    for r in task_runs
                )  # fmt: skip
                verdict_here = [r for r in task_runs if r.seed in config.verdict_seed_list]
                eval_s = (
                    env_step
                    * worst
                    * (
                        (len(task_runs) - len(verdict_here)) * task.validation_episodes
                        + len(verdict_here)
                        * (task.test_episodes + len(config.budget) * task.validation_episodes)
                    )
                )
                total_train += train_s
                total_eval += eval_s
                print(f"  {kind:<10} step at batch 256: adamw {costs['adamw']:.3f} s, dopr-adamw "
                      f"{costs['dopr-adamw']:.3f} s ({costs['dopr-adamw'] / costs['adamw']:.2f}x);"
                      f" loss over {args.learn_steps} steps at batch {batch}: {first:.3f} -> "
                      f"{last:.3f}; closed-loop {env_step * 1e3:.1f} ms per env step "
                      f"(8 envs batched); {len(task_runs)} runs: train "
                      f"{train_s / 3600:,.0f} h, eval (worst case) {eval_s / 3600:,.0f} h of one "
                      f"core")  # fmt: skip
    print(f"\nfull preset: {len(all_runs):,} runs; training {total_train / 3600:,.0f} h, "
          f"evaluation at most {total_eval / 3600:,.0f} h, on one CPU core")  # fmt: skip
    for workers in (int(w) for w in args.workers.split(",")):
        hours = (total_train + total_eval) / 3600 / workers
        print(f"  on {workers:>3} single-core Ray workers: {hours:,.1f} h ({hours / 24:,.1f} days)")


if __name__ == "__main__":
    main()
