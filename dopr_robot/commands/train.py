"""`dopr-robot train`: behaviour cloning of a policy on a demonstration store.

Every field of `TrainConfig` and `PolicyConfig` is a flag (`--batch-size`, `--mlp-width`,
`--optimizer-kwargs '{gamma = 0.3}'`, ...), with the field's docstring as its help, so nothing is
settable in TOML that is not settable here. Values are merged in one order — the run's saved
settings (with --resume), then `--recipe`'s tables, then --config's, then flags — and validated
once, by the typed configs, so a bad value is the same sentence wherever it came from.
"""

from __future__ import annotations

import argparse
import os
import tomllib
import typing
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..policies import PolicyConfig
from ..threads import add_threads_flag
from ..train import TrainConfig

#: flags that keep a name of their own (the rest are the field names with dashes)
FLAG_NAMES = {("policy", "kind"): "--policy"}
#: fields set by dedicated arguments, not derived
DEDICATED = {"data", "out"}


def _flag_fields() -> list[tuple[str, str, Any]]:
    """(section, field name, field info) of every derived flag."""
    fields = []
    for section, model in (("train", TrainConfig), ("policy", PolicyConfig)):
        for name, info in model.model_fields.items():
            if name not in DEDICATED:
                fields.append((section, name, info))
    return fields


def _is_text(annotation: Any) -> bool:
    return annotation is str or (
        typing.get_origin(annotation) is typing.Literal
        and all(isinstance(value, str) for value in typing.get_args(annotation))
    )


def _parse(annotation: Any, text: str) -> Any:
    """A flag's text as the value the config expects: words stay words, lists are
    comma-separated, numbers, booleans and tables are read as TOML values."""
    if _is_text(annotation):
        return text
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return [_parse(item, part.strip()) for part in text.split(",") if part.strip()]
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text  # the typed config names it as the wrong type


def add_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a policy on a zarr demonstration store",
        description="Every [train] and [policy] setting is also a flag; flags override --config.",
    )
    train.add_argument(
        "--data", type=Path, help="demonstration store (zarr); with --resume, the run's own"
    )
    train.add_argument("--out", type=Path, required=True, help="run directory to create")
    train.add_argument(
        "--recipe",
        metavar="NAME",
        help="start from a shipped recipe's [train] and [policy] settings (e.g. pusht-flow; "
        "--config and flags override it)",
    )
    train.add_argument(
        "--config", type=Path, help="TOML with [train] and [policy] tables (flags override it)"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its saved settings (flags given must match them, "
        "except a larger --steps, which extends the run)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_flag(train)
    groups = {
        "train": train.add_argument_group("training settings ([train] in --config)"),
        "policy": train.add_argument_group("policy settings ([policy] in --config)"),
    }
    for section, name, info in _flag_fields():
        flag = FLAG_NAMES.get((section, name), "--" + name.replace("_", "-"))
        help_text = " ".join((info.description or "").split())
        destination = f"{section}__{name}"
        if info.annotation is bool:
            groups[section].add_argument(
                flag, dest=destination, action=argparse.BooleanOptionalAction, help=help_text
            )
        else:
            groups[section].add_argument(flag, dest=destination, metavar="VALUE", help=help_text)
    train.set_defaults(func=_train)


def _merged(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    from ..config_io import moved_path
    from ..train import load_toml
    from ..train.run_dir import CONFIG, RunDir, with_old_meanings

    values: dict[str, dict[str, Any]] = {"train": {}, "policy": {}}
    if args.resume:  # start from what the run was started with; what is given must match it
        run = RunDir(args.out)
        if not run.config.exists():
            raise UserError(f"{args.out} is not a training run (no {CONFIG}); nothing to resume")
        saved = with_old_meanings(run.read_config())  # runs from before a setting existed
        values["train"], values["policy"] = dict(saved["train"]), dict(saved["policy"])
        if saved["train"].get("data") and saved["train"].get("out"):  # the run may have moved
            values["train"]["data"] = moved_path(
                saved["train"]["data"], saved["train"]["out"], args.out
            )
    elif args.data is None:
        raise UserError("--data is required (except with --resume)")
    if args.recipe:
        from ..recipes import load_recipe

        recipe = load_recipe(args.recipe)
        values["train"].update(recipe.train)
        values["policy"].update(recipe.policy)
    if args.config:
        toml_train, toml_policy = load_toml(args.config)
        values["train"].update(toml_train)
        values["policy"].update(toml_policy)
    for section, name, info in _flag_fields():
        given = getattr(args, f"{section}__{name}")
        if given is not None:
            values[section][name] = (
                given if isinstance(given, bool) else _parse(info.annotation, given)
            )
    values["train"]["out"] = str(args.out)
    if args.data is not None:  # absolute: eval finds the demonstrations from any directory
        values["train"]["data"] = str(args.data.resolve())
    return values["train"], values["policy"]


def _train(args: argparse.Namespace) -> int:
    from ..train import train

    train_values, policy_values = _merged(args)
    config = TrainConfig.from_dict(train_values, "train settings")
    config.check_optimizer()
    policy = PolicyConfig.from_dict(policy_values, "policy settings")
    result = train(config, policy, resume=args.resume, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports for the run
    val = "n/a" if result.val_loss is None else f"{result.val_loss:.4g}"
    val_ema = "n/a" if result.val_loss_ema is None else f"{result.val_loss_ema:.4g}"
    print(
        f"{result.run}: {result.steps} steps, final loss {result.final_loss:.4g}, "
        f"val loss {val} (EMA {val_ema}); checkpoint {result.checkpoint}"
    )
    return 0
