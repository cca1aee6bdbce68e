"""Training throughput: the fast path against eager PyTorch, and the training loop's overhead.

    python bench/train_throughput.py [--steps 100] [--rounds 7] [--quick]

On state data (balance demonstrations, 9-D state, 1-D action; To 2):

1. The trainer's step (`Trainer.train_step`) on the default fast path, with bf16 autocast on top,
   and with `fast_path = false` (plain eager PyTorch: per-tensor AdamW, oneDNN's conv gradients),
   timed in interleaved rounds in one process, for
   - the default study's MLP (width 128, depth 2, batch 128; flow, diffusion and regression,
     AdamW and DoPr-AdamW), and
   - a diffusion policy on diffusion_policy's default U-Net widths (256, 512, 1024; 63 M
     parameters) at batch 64 (its batch of 256 takes seconds per step on two cores).
   Goal: fast / eager >= 1.3 on both networks.
2. samples/s of the trainer's step per policy (flow, diffusion, regression on the MLP backbone at
   width 256, batch 256; flow on the default U-Net) and optimizer (adamw, dopr-adamw, muon,
   dopr-muon), against the same network's bare step on a batch gathered once (forward + loss,
   backward, optimizer step); the overhead is loop / bare − 1. Goal: overhead <= 10 %.

Every ratio is the median over rounds of the ratio within a round (the compared paths run back to
back in each round, so a slow stretch of this shared machine slows both sides of a ratio): the
ratio of the two medians, printed before, let one path's slow rounds and the other's fast ones
meet, and moved a row by ±0.2 between runs. samples/s are from each path's median round.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rounds import paired_ratio

from dopr_robot.envs.collect import collect
from dopr_robot.envs.config import CollectConfig
from dopr_robot.policies import PolicyConfig, StepNoise
from dopr_robot.train import TrainConfig, Trainer

OPTIMIZERS = ("adamw", "dopr-adamw", "muon", "dopr-muon")
STUDY_MLP = dict(backbone="mlp", mlp_width=128, mlp_depth=2, pred_horizon=8, action_horizon=4)
DP_UNET = dict(backbone="unet", unet_down_dims=[256, 512, 1024])
PATHS = {"eager": dict(fast_path=False), "fast": {}, "fast+bf16": dict(bf16=True)}
POLICIES = [("flow", "mlp"), ("diffusion", "mlp"), ("regression", "mlp"), ("flow", "unet")]


def timed(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def trainer_for(store: Path, out: Path, policy: PolicyConfig, batch: int, **train) -> Trainer:
    config = TrainConfig(
        data=str(store),
        out=str(out),
        steps=10**6,
        batch_size=batch,
        val_every=10**6,
        checkpoint_every=10**6,
        **train,
    )
    return Trainer(config, policy, progress=False)


def fast_against_eager(
    store: Path, folder: Path, label: str, policy, batch, optimizer, steps, args
):
    """s/step of the trainer's step per path, in interleaved rounds; prints the ratios."""
    trainers = {}
    for path, settings in PATHS.items():
        out = folder / f"{label}-{optimizer}-{path}".replace(" ", "_")
        trainers[path] = trainer_for(store, out, policy, batch, optimizer=optimizer, **settings)
        trainers[path].train_step()  # warm-up: allocations, the first DoPr refresh
    times = {path: [] for path in trainers}
    for _ in range(args.rounds):
        for path, trainer in trainers.items():
            times[path].append(timed(trainer.train_step, steps))
    median = {path: statistics.median(values) for path, values in times.items()}
    print(
        f"  {label:<28} {optimizer:<10} eager {batch / median['eager']:8,.0f} samples/s   "
        + "   ".join(
            f"{p} {batch / median[p]:8,.0f} ({paired_ratio(times['eager'], times[p]):.2f}x)"
            for p in PATHS
            if p != "eager"
        )
    )


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

    steps = max(4, args.steps // (16 if backbone == "unet" else 2))
    trainer.train_step(), bare()  # warm-up: lazy allocations, first DoPr refresh
    loop_times, bare_times = [], []
    for _ in range(args.rounds):
        loop_times.append(timed(trainer.train_step, steps))
        bare_times.append(timed(bare, steps))
    loop, plain = float(np.median(loop_times)), float(np.median(bare_times))
    return 256 / loop, 256 / plain, paired_ratio(loop_times, bare_times) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--steps",
        type=int,
        default=100,
        help="timed steps per round (study MLP; half for the "
        "loop overhead's MLP rows, a 20th and a 16th for the U-Net rows)",
    )
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (median)")
    parser.add_argument("--quick", action="store_true", help="10 steps, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 10, 1
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, state data")
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "balance.zarr"
        collect(
            CollectConfig(
                env_id="dopr_robot/Balance-v0", task_horizon=300, episodes=20, noise=0.05
            ),
            store,
            progress=False,
        )
        folder = Path(folder)
        print("\nfast path vs eager PyTorch (trainer step; ratio = eager time / this path's time)")
        for kind in ("flow", "diffusion", "regression"):
            for optimizer in ("adamw", "dopr-adamw"):
                policy = PolicyConfig(kind=kind, **STUDY_MLP)
                label = f"{kind} study MLP (b 128)"
                fast_against_eager(store, folder, label, policy, 128, optimizer, args.steps, args)
        policy = PolicyConfig(kind="diffusion", **DP_UNET)
        steps = max(2, args.steps // 20)
        label = "diffusion DP U-Net (b 64)"  # AdamW only: DoPr there is minutes per round
        fast_against_eager(store, folder, label, policy, 64, "adamw", steps, args)
        print("\nloop overhead on the fast path (trainer step vs bare step, batch 256)")
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
