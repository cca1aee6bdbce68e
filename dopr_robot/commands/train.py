"""`dopr-robot train`: behaviour cloning of a policy on a demonstration store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(commands) -> None:
    train = commands.add_parser("train", help="train a policy on a zarr demonstration store")
    train.add_argument(
        "--data", type=Path, help="demonstration store (zarr); with --resume, the run's own"
    )
    train.add_argument("--out", type=Path, required=True, help="run directory to create")
    train.add_argument("--policy", choices=("flow", "diffusion", "regression"), help="kind")
    train.add_argument("--backbone", choices=("mlp", "unet"), help="network (default mlp)")
    train.add_argument("--obs-keys", help="observation keys, comma-separated (default: state)")
    train.add_argument("--optimizer", help="adamw | muon | dopr-adamw | dopr-muon | ...")
    train.add_argument("--lr", type=float, help="peak learning rate")
    train.add_argument("--steps", type=int, help="optimizer steps")
    train.add_argument("--batch-size", type=int, help="global batch size")
    train.add_argument("--seed", type=int, help="seed of weights, data order and noise")
    train.add_argument("--device", help="auto | cpu | cuda")
    train.add_argument(
        "--config", type=Path, help="TOML with [train] and [policy] tables (flags override it)"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its saved settings (flags given must match them)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..train import TrainConfig, load_toml, train
    from ..train.checkpoint import read_config
    from ..train.config import policy_config

    train_values, policy_values = {}, {}
    if args.resume:  # start from what the run was started with; what is given must match it
        if not (args.out / "config.json").exists():
            raise UserError(f"{args.out} is not a training run (no config.json); nothing to resume")
        saved = read_config(args.out)
        train_values, policy_values = dict(saved["train"]), dict(saved["policy"])
    elif args.data is None:
        raise UserError("--data is required (except with --resume)")
    if args.config:
        toml_train, toml_policy = load_toml(args.config)
        train_values.update(toml_train)
        policy_values.update(toml_policy)
    flags = {
        "optimizer": args.optimizer,
        "lr": args.lr,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "device": args.device,
    }
    train_values.update({k: v for k, v in flags.items() if v is not None})
    train_values["out"] = str(args.out)
    if args.data is not None:  # absolute: eval finds the demonstrations from any directory
        train_values["data"] = str(args.data.resolve())
    if args.policy:
        policy_values["kind"] = args.policy
    if args.backbone:
        policy_values["backbone"] = args.backbone
    if args.obs_keys:
        policy_values["obs_keys"] = [k.strip() for k in args.obs_keys.split(",") if k.strip()]
    config = TrainConfig.from_dict(train_values)
    result = train(
        config, policy_config(policy_values), resume=args.resume, progress=not args.quiet
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports for the run
    val = "n/a" if result.val_loss is None else f"{result.val_loss:.4g}"
    val_ema = "n/a" if result.val_loss_ema is None else f"{result.val_loss_ema:.4g}"
    print(
        f"{result.run}: {result.steps} steps, final loss {result.final_loss:.4g}, "
        f"val loss {val} (EMA {val_ema}); checkpoint {result.checkpoint}"
    )
    return 0
