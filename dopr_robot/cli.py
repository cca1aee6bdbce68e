"""The `dopr-robot` command: one sub-command per capability that exists.

Errors a user can cause (a bad flag, an unknown name) end with one sentence on stderr and exit
code 2; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import os
import sys

from .threads import prefer_passive_waiting

prefer_passive_waiting()  # before anything imports torch: see threads.py

from . import __version__, stop  # noqa: E402
from .commands import collect, data, envs, evaluate, study, train  # noqa: E402
from .disk import disk_full_sentence, no_room  # noqa: E402
from .errors import UserError  # noqa: E402


def _optim_list(args: argparse.Namespace) -> int:
    from .optim import AP_DEFAULTS, OPTIMIZER_NAMES
    from .optim.factory import ADAMW_DEFAULTS, COMMON_DEFAULTS

    print("optimizers: " + ", ".join(OPTIMIZER_NAMES))
    print("defaults (every name): " + _settings(COMMON_DEFAULTS))
    print("AdamW part (adamw, muon's non-matrix params, dopr-*): " + _settings(ADAMW_DEFAULTS))
    print("AP settings (dopr-* only): " + _settings(AP_DEFAULTS))
    return 0


def _settings(values: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items())


def _optim_describe(args: argparse.Namespace) -> int:
    import torch

    from .optim import build_optimizer
    from .policies.nets import ConditionalUnet1D, ResidualMLP

    if args.net == "mlp":
        model = ResidualMLP(in_dim=args.in_dim, out_dim=args.out_dim)
    else:
        model = ConditionalUnet1D(action_dim=args.out_dim, cond_dim=args.in_dim)
    try:
        optimizer = build_optimizer(args.optimizer, model)
    except ValueError as error:
        raise UserError(str(error)) from None
    params = sum(p.numel() for p in model.parameters())
    print(f"{type(model).__name__}: {params:,} parameters, torch {torch.__version__}")
    if hasattr(optimizer, "describe"):
        print(optimizer.describe())
    else:
        print(f"{args.optimizer}: {type(optimizer).__name__}, no activation-wise stage")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dopr-robot",
        description="Robot policy learning with double preconditioning (DoPr).",
    )
    parser.add_argument("--version", action="version", version=f"dopr-robot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    optim = commands.add_parser("optim", help="list optimizers; show what DoPr preconditions")
    optim_commands = optim.add_subparsers(dest="optim_command", metavar="ACTION", required=True)
    listing = optim_commands.add_parser("list", help="optimizer names and their default settings")
    listing.set_defaults(func=_optim_list)
    describe = optim_commands.add_parser(
        "describe", help="which layers of a policy network an optimizer preconditions"
    )
    describe.add_argument("--optimizer", default="dopr-adamw", help="an optimizer name")
    describe.add_argument("--net", choices=("mlp", "unet"), default="mlp", help="backbone")
    describe.add_argument("--in-dim", type=int, default=64, help="input / condition size")
    describe.add_argument("--out-dim", type=int, default=16, help="output / action size")
    describe.set_defaults(func=_optim_describe)
    data.add_parser(commands)
    envs.add_parser(commands)
    collect.add_parser(commands)
    train.add_parser(commands)
    evaluate.add_parser(commands)
    study.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        return _reader_went_away()


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # --help and --version: a closed pipe shows here, not at exit
        raise
    try:
        if getattr(args, "threads", None) is not None:
            from .threads import use_threads

            use_threads(args.threads)
        with stop.handling():  # SIGTERM / SIGINT: workers end, one sentence, exit 2 (stop.py)
            code = args.func(args)
        sys.stdout.flush()  # inside the handlers below, not at interpreter exit
        return code
    except UserError as error:
        return _say(f"error: {error}")
    except stop.Stopped as stopped:
        return _say(stopped.sentence())
    except OSError as error:
        if not no_room(error):
            raise
        where = error.filename or "a file"
        return _say(f"error: {disk_full_sentence(where, error)}")


def _say(sentence: str) -> int:
    print(f"dopr-robot: {sentence}", file=sys.stderr)
    return 2


def _reader_went_away() -> int:
    """stdout's reader closed the pipe (`dopr-robot data info X | head`): stop without a
    traceback. Python flushes stdout once more at exit, so stdout is pointed at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # what a shell reports for a command ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
