"""Training throughput per policy x optimizer, and the training loop's overhead.

    python bench/train_throughput.py [--steps 60] [--rounds 3] [--quick]

On state data (balance demonstrations, 9-D state, 1-D action; batch 256, Tp 16, To 2, Ta 8):
- samples/s of the trainer's step (`Trainer.train_step`: batch gather, noise, forward, backward,
  clipping, optimizer, LR schedule, EMA), per policy (flow, diffusion, regression on the MLP
  backbone; flow on the U-Net) and optimizer (adamw, dopr-adamw, muon, dopr-muon);
- the same network's bare step on a batch gathered once (forward + loss, backward, optimizer
  step), measured in alternating rounds in the same process; the overhead is loop / bare − 1.
Goal: overhead <= 10 %.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dopr_robot.envs.collect import collect
from dopr_robot.envs.config import CollectConfig
from dopr_robot.policies import PolicyConfig, StepNoise
from dopr_robot.train import TrainConfig, Trainer

OPTIMIZERS = ("adamw", "dopr-adamw", "muon", "dopr-muon")
POLICIES = [("flow", "mlp"), ("diffusion", "mlp"), ("regression", "mlp"), ("flow", "unet")]


def timed(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def measure(store: Path, out: Path, kind: str, backbone: str, optimizer: str, args) -> tuple:
    config = TrainConfig(
        data=str(store),
        out=str(out),
        optimizer=optimizer,
        steps=10**6,
        batch_size=256,
        val_every=10**6,
        checkpoint_every=10**6,
    )
    trainer = Trainer(config, PolicyConfig(kind=kind, backbone=backbone), progress=False)
    policy, opt = trainer.policy, trainer.optimizer
    batch = trainer.dataset[trainer.batch_indices(0)]
    noise_seed = iter(range(10**9))

    def bare():
        loss, _ = policy.compute_loss(batch, StepNoise(0, next(noise_seed), 256))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    steps = max(4, args.steps // (8 if backbone == "unet" else 1))
    trainer.train_step(), bare()  # warm-up: lazy allocations, first DoPr refresh
    loop_times, bare_times = [], []
    for _ in range(args.rounds):
        loop_times.append(timed(trainer.train_step, steps))
        bare_times.append(timed(bare, steps))
    loop, plain = float(np.median(loop_times)), float(np.median(bare_times))
    return 256 / loop, 256 / plain, loop / plain - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per round (MLP)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--quick", action="store_true", help="10 steps, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 10, 1
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 256, state data")
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "balance.zarr"
        collect(
            CollectConfig(
                env_id="dopr_robot/Balance-v0", task_horizon=300, episodes=20, noise=0.05
            ),
            store,
            progress=False,
        )
        for kind, backbone in POLICIES:
            for optimizer in OPTIMIZERS if backbone == "mlp" else ("adamw", "dopr-adamw"):
                out = Path(folder) / f"{kind}-{backbone}-{optimizer}"
                loop, bare, overhead = measure(store, out, kind, backbone, optimizer, args)
                print(
                    f"  {kind:10s} {backbone:4s} {optimizer:10s} trainer {loop:8,.0f} samples/s"
                    f"   bare step {bare:8,.0f} samples/s   loop overhead {100 * overhead:+5.1f} %"
                )


if __name__ == "__main__":
    main()
