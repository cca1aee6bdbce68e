"""`dopr-robot collect`: expert demonstrations for a task family into a zarr store."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..threads import add_threads_flag
from .env_flags import add_env_flags, env_id_from, env_settings_from


def add_parser(commands) -> None:
    collect = commands.add_parser(
        "collect", help="run a scripted expert and store its episodes as demonstrations"
    )
    add_env_flags(collect, "env id, e.g. dopr_robot/ReachChain-v0, gym_pusht/PushT-v0, pkg:Class")
    collect.add_argument(
        "--recipe",
        metavar="NAME",
        help="collect the demonstrations a shipped recipe was measured with (flags override)",
    )
    collect.add_argument("--task-horizon", type=int, help="H of every episode")
    collect.add_argument("--episodes", type=int, help="episodes to store")
    collect.add_argument("--out", type=Path, required=True, help="output zarr store (directory)")
    collect.add_argument("--image", action="store_true", help="also store 96x96 RGB images")
    collect.add_argument(
        "--zarr-format",
        type=int,
        choices=(2, 3),
        help="zarr format of a new store (default 2: diffusion_policy's code, on zarr 2.x, "
        "opens only format 2; the toolkit reads both)",
    )
    collect.add_argument("--noise", type=float, help="σ of Gaussian noise on expert actions (0)")
    collect.add_argument("--perturbation", type=float, help="process noise σ in the env (0)")
    collect.add_argument("--seed", type=int, help="attempt k uses env seed S + k (0)")
    collect.add_argument("--task", help="MetaWorld task name (dopr_robot/MetaWorld-v0 only)")
    collect.add_argument("--expert", help="module:Class of your own expert (an Expert subclass)")
    collect.add_argument("--keep-failed", action="store_true", help="store failed episodes too")
    collect.add_argument("--resume", action="store_true", help="add to an existing store")
    collect.add_argument("--overwrite", action="store_true", help="replace an existing store")
    collect.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_flag(collect)
    collect.set_defaults(func=_collect)


def _collect(args: argparse.Namespace) -> int:
    from ..envs.collect import collect
    from ..envs.config import CollectConfig
    from ..errors import UserError

    values: dict = {}
    if args.recipe:
        from ..recipes import load_recipe

        values = dict(load_recipe(args.recipe).collect)
    if not args.env and "env_id" not in values:
        raise UserError("collect needs --env (the env to run the expert in) or --recipe")
    env_kwargs = {**values.get("env_kwargs", {}), **env_settings_from(args)}
    if args.task is not None:
        if env_id_from(args) != "dopr_robot/MetaWorld-v0":
            raise UserError("--task is only for dopr_robot/MetaWorld-v0")
        env_kwargs["task"] = args.task
    given = dict(
        env_id=env_id_from(args),
        expert=args.expert,
        task_horizon=args.task_horizon,
        episodes=args.episodes,
        seed=args.seed,
        noise=args.noise,
        perturbation=args.perturbation,
        image=args.image or None,
        keep_failed=args.keep_failed or None,
    )
    values.update({key: value for key, value in given.items() if value is not None})
    for key, flag in (("task_horizon", "--task-horizon"), ("episodes", "--episodes")):
        if key not in values:
            raise UserError(f"collect needs {flag} (or a --recipe that sets it)")
    config = CollectConfig.from_dict(
        {**values, "env_kwargs": env_kwargs}, "collect flags", flags=True
    )
    result = collect(
        config,
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
        zarr_format=args.zarr_format,
    )
    print(
        f"{result.path}: {result.episodes} episodes stored "
        f"({result.successes_this_run}/{result.attempts_this_run} attempts succeeded this run, "
        f"{result.attempts} attempts in all)"
    )
    return 0
