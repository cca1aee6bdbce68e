"""The GPU checks `bench/gpu_check.sh` runs, one per sub-command, each printing one line.

    python bench/gpu_check.py trainer | dopr | nccl-step [--data STORE]

- `trainer`: the trainer's step on diffusion_policy's U-Net (widths 256, 512, 1024; diffusion,
  batch 256, AdamW) on CUDA: eager PyTorch, the fast path in fp32, and the fast path with bf16
  autocast, timed in interleaved rounds (the `train_throughput` bench's rows, on the GPU); the
  line gives samples/s per path and each path's speed-up over eager, and fails if a loss is not
  finite or fp32's first loss differs from eager's.
- `dopr`: DoPr over AdamW against AdamW alone on the same U-Net, one optimizer step each after a
  shared backward, in interleaved rounds; the line gives the step-time ratio.
- `nccl-step`: run under `torchrun --nproc_per_node 2`: two ranks (one GPU each) train 4 steps
  of DoPr-AdamW with NCCL; rank 0 prints the line.

A machine without CUDA gets one sentence on stderr and exit 2 from every sub-command.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

DP_UNET = dict(backbone="unet", unet_down_dims=[256, 512, 1024])
PATHS = {"eager": dict(fast_path=False), "fast fp32": {}, "fast bf16": dict(bf16=True)}


def _store(folder: Path) -> Path:
    from dopr_robot.envs.collect import collect
    from dopr_robot.envs.config import CollectConfig

    store = folder / "balance.zarr"
    config = CollectConfig(env_id="dopr_robot/Balance-v0", task_horizon=200, episodes=10)
    collect(config, store, progress=False)
    return store


def _trainer(store: Path, out: Path, optimizer: str = "adamw", **settings):
    from dopr_robot.policies import PolicyConfig
    from dopr_robot.train import TrainConfig
    from dopr_robot.train.trainer import Trainer

    config = TrainConfig(
        data=str(store), out=str(out), optimizer=optimizer, steps=10**6, batch_size=256,
        val_every=10**6, checkpoint_every=10**6, device="cuda", **settings,
    )  # fmt: skip
    return Trainer(config, PolicyConfig(kind="diffusion", **DP_UNET), progress=False)


def _timed(step, count: int) -> float:
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(count):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / count


def check_trainer(store: Path, folder: Path, rounds: int = 5, steps: int = 10) -> str:
    trainers = {path: _trainer(store, folder / path.replace(" ", "-"), **s) for path, s in
                PATHS.items()}  # fmt: skip
    first = {path: trainer.train_step()["loss"] for path, trainer in trainers.items()}
    if not all(math.isfinite(loss) for loss in first.values()):
        raise SystemExit(f"trainer: a loss is not finite {first}")
    if not math.isclose(first["eager"], first["fast fp32"], rel_tol=1e-3):
        raise SystemExit(f"trainer: fp32 fast path's first loss {first} differs from eager's")
    times: dict[str, list[float]] = {path: [] for path in trainers}
    for _ in range(rounds):
        for path, trainer in trainers.items():
            times[path].append(_timed(trainer.train_step, steps))
    median = {path: statistics.median(values) for path, values in times.items()}
    rates = "   ".join(
        f"{path} {256 / median[path]:,.0f} samples/s ({median['eager'] / median[path]:.2f}x)"
        for path in PATHS
    )
    return f"trainer step, DP U-Net diffusion b256 on {torch.cuda.get_device_name()}: {rates}"


def check_dopr(rounds: int = 5, steps: int = 10) -> str:
    from dopr_robot.optim import build_optimizer
    from dopr_robot.policies.nets import ConditionalUnet1D

    torch.manual_seed(0)
    model = ConditionalUnet1D(action_dim=2, cond_dim=64, down_dims=[256, 512, 1024]).cuda()
    x, cond = torch.randn(256, 16, 2, device="cuda"), torch.randn(256, 64, device="cuda")
    t = torch.randint(0, 100, (256,), device="cuda")
    optimizers = {name: build_optimizer(name, model) for name in ("adamw", "dopr-adamw")}

    def step(optimizer):
        def run():
            optimizer.zero_grad(set_to_none=True)
            model(x, t, cond).square().mean().backward()
            optimizer.step()

        return run

    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for optimizer in optimizers.values():
        step(optimizer)()  # warm-up, and DoPr's first refresh
    for _ in range(rounds):
        for name, optimizer in optimizers.items():
            times[name].append(_timed(step(optimizer), steps))
    adamw, dopr = (statistics.median(times[n]) for n in ("adamw", "dopr-adamw"))
    return (
        f"DoPr-AdamW vs AdamW, DP U-Net b256 (forward+backward+step): {1e3 * adamw:.1f} vs "
        f"{1e3 * dopr:.1f} ms/step, DoPr / AdamW = {dopr / adamw:.2f}"
    )


def check_nccl(store: Path, folder: Path) -> str | None:
    from dopr_robot.policies import PolicyConfig
    from dopr_robot.train import TrainConfig, train

    config = TrainConfig(
        data=str(store), out=str(folder / "ddp"), optimizer="dopr-adamw", steps=4,
        batch_size=64, val_every=4, checkpoint_every=4, device="cuda",
    )  # fmt: skip
    result = train(config, PolicyConfig(kind="flow", mlp_width=256), progress=False)
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    world = os.environ.get("WORLD_SIZE", "1")
    return f"nccl: {world} ranks, {result.steps} steps of DoPr-AdamW, loss {result.final_loss:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("check", choices=("trainer", "dopr", "nccl-step"))
    parser.add_argument("--data", type=Path, help="a demonstration store (default: collect one)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"gpu_check: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.check == "dopr":
            print(check_dopr())
            return 0
        store = args.data or _store(folder)
        if args.check == "trainer":
            print(check_trainer(store, folder))
        else:
            line = check_nccl(store, folder)
            if line:
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
