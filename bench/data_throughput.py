"""Windows per second from the sampler + DataLoader, beside what a training step consumes.

    python bench/data_throughput.py [--batches 200] [--quick]

Builds two zarr stores in a temporary directory — 100k steps of state data (20-D state, 10-D
action) and 20k steps of 96×96 RGB images — and measures, at batch 256 with diffusion_policy's
horizons (Tp 16, To 2, Ta 8):
- the toolkit's loader (`make_loader`: whole batches gathered with numpy), 0 and 2 workers;
- the per-sample style of diffusion_policy/LeRobot (one `__getitem__` per window, default collate),
  side by side, as a ratio;
- the consumption rate of a training step (forward + backward + AdamW) of the default state
  policy (FlowPolicy on the residual MLP).
Goal: for state data the loader delivers at least 10× what training consumes.

With the `formats` extra it also converts an image store with two 96×96 cameras to a LeRobot
v3.0 dataset and back (H.264 video), printing frames/s of encoding and of decoding, and the
training-time loading rate of the store decoded from video beside the original's (they hold the
same arrays once decoded, so the ratio should be about 1: video costs at conversion, not in
training).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from dopr_robot.datasets import ReplayBuffer, SequenceDataset, make_loader
from dopr_robot.optim import build_optimizer
from dopr_robot.policies import PolicyConfig, ShapeMeta, StepNoise, build_policy

BATCH, TP, TO, TA = 256, 16, 2, 8
STATE_DIM, ACTION_DIM = 20, 10


def build_store(path: Path, steps: int, episode_length: int, image: bool) -> None:
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer.create(path)
    for start in range(0, steps, episode_length):
        n = min(episode_length, steps - start)
        episode = {
            "action": rng.normal(size=(n, ACTION_DIM)).astype(np.float32),
            "state": rng.normal(size=(n, STATE_DIM)).astype(np.float32),
        }
        if image:  # smooth frames: realistic compression, quick to write
            shade = (np.arange(n, dtype=np.uint8) % 255)[:, None, None, None]
            episode["image"] = np.broadcast_to(shade, (n, 96, 96, 3)).copy()
        buffer.add_episode(episode)


def windows_per_second(loader, batches: int) -> float:
    iterator = iter(loader)
    next(iterator)  # workers started, first batch out
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        count += batch["action"].shape[0]
    return count / (time.perf_counter() - start)


def per_sample_loader(dataset: SequenceDataset, workers: int) -> DataLoader:
    """The common style: one __getitem__ per window, torch's default collate."""
    generator = torch.Generator().manual_seed(0)
    return DataLoader(
        dataset,
        batch_size=BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        generator=generator,
        persistent_workers=workers > 0,
    )


def training_consumption(steps: int) -> float:
    """Windows/s a training step of the default policy consumes: FlowPolicy on the residual MLP,
    forward + loss + backward + AdamW, on a batch of windows shaped like the state store's."""
    torch.manual_seed(0)
    meta = ShapeMeta(obs={"state": [STATE_DIM]}, action_dim=ACTION_DIM)
    policy = build_policy(
        PolicyConfig(kind="flow", pred_horizon=TP, obs_horizon=TO, action_horizon=TA), meta
    )
    batch = {
        "obs": {"state": torch.randn(BATCH, TO, STATE_DIM)},
        "action": torch.randn(BATCH, TP, ACTION_DIM),
    }
    policy.fit_normalizer({"state": batch["obs"]["state"], "action": batch["action"]})
    optimizer = build_optimizer("adamw", policy)

    def step(index: int) -> None:
        loss, _ = policy.compute_loss(batch, StepNoise(0, index, BATCH))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for index in range(3):
        step(index)
    start = time.perf_counter()
    for index in range(steps):
        step(index)
    return steps * BATCH / (time.perf_counter() - start)


def lerobot_rates(tmp: Path, steps: int, batches: int) -> None:
    """Encode and decode rates of a LeRobot round trip, and loading from the decoded store."""
    try:
        from dopr_robot.datasets import convert_lerobot, write_lerobot
    except ImportError:
        print("\nLeRobot: skipped (install the formats extra)")
        return
    source = tmp / "cameras.zarr"
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer.create(source, attrs={"fps": 10})
    yy, xx = np.mgrid[0:96, 0:96]
    for start in range(0, steps, 200):
        n = min(200, steps - start)
        t = np.arange(start, start + n)[:, None, None]
        frame = np.stack([(xx + 2 * t) % 256, (yy + t) % 256, (xx + yy + t) % 256], -1)
        buffer.add_episode(
            {
                "action": rng.normal(size=(n, ACTION_DIM)).astype(np.float32),
                "state": rng.normal(size=(n, STATE_DIM)).astype(np.float32),
                "front": frame.astype(np.uint8),
                "side": frame[:, ::-1].astype(np.uint8),
            }
        )
    frames = 2 * steps
    started = time.perf_counter()
    write_lerobot(source, tmp / "lerobot")
    encode = frames / (time.perf_counter() - started)
    started = time.perf_counter()
    convert_lerobot(tmp / "lerobot", tmp / "decoded.zarr")
    decode = frames / (time.perf_counter() - started)
    print(f"\nLeRobot v3.0 round trip, 2 cameras 96x96, {steps:,} steps ({frames:,} frames):")
    print(f"  store -> LeRobot (H.264 encode): {encode:10,.0f} frames/s")
    print(f"  LeRobot -> store (PyAV decode):  {decode:10,.0f} frames/s")
    rates = {}
    for name, path, keys in (
        ("original", source, ["front", "side", "state"]),
        ("decoded from video", tmp / "decoded.zarr", ["images_front", "images_side", "state"]),
    ):
        dataset = SequenceDataset(path, keys, pred_horizon=TP, obs_horizon=TO, action_horizon=TA)
        rates[name] = windows_per_second(make_loader(dataset, BATCH), batches)
    print(
        f"  loading, 0 workers: original {rates['original']:10,.0f} windows/s   decoded from "
        f"video {rates['decoded from video']:10,.0f} windows/s   ratio "
        f"{rates['decoded from video'] / rates['original']:5.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batches timed per loader")
    parser.add_argument("--quick", action="store_true", help="small stores, few batches")
    args = parser.parse_args()
    batches = 10 if args.quick else args.batches
    state_steps, image_steps = (10_000, 2_000) if args.quick else (100_000, 20_000)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
        f"Tp {TP}, To {TO}, Ta {TA}"
    )
    consumed = training_consumption(20 if args.quick else 100)
    print(f"training consumption (FlowPolicy, MLP, fwd+bwd+AdamW): {consumed:,.0f} windows/s")
    with tempfile.TemporaryDirectory() as tmp:
        cases = (
            ("state", state_steps, ["state"], False),
            ("image 96x96", image_steps, ["image", "state"], True),
        )
        for name, steps, keys, image in cases:
            path = Path(tmp) / f"{name.split()[0]}.zarr"
            started = time.perf_counter()
            build_store(path, steps, 200, image)
            dataset = SequenceDataset(
                path, keys, pred_horizon=TP, obs_horizon=TO, action_horizon=TA
            )
            print(
                f"\n{name}: {steps:,} steps, {len(dataset):,} windows "
                f"(store built and loaded in {time.perf_counter() - started:.1f} s)"
            )
            for workers in (0, 2):
                ours = windows_per_second(make_loader(dataset, BATCH, num_workers=workers), batches)
                theirs = windows_per_second(
                    per_sample_loader(dataset, workers), max(3, batches // 10)
                )
                line = (
                    f"  {workers} workers: batched {ours:12,.0f} windows/s   per-sample "
                    f"{theirs:10,.0f} windows/s   ratio {ours / theirs:6.1f}"
                )
                if name == "state":
                    line += f"   loader/training {ours / consumed:6.1f}"
                print(line)
        lerobot_rates(Path(tmp), 1_000 if args.quick else 5_000, batches)


if __name__ == "__main__":
    main()
