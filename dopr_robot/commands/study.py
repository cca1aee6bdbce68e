"""`dopr-robot study`: the main job — demonstrations to a verdict on DoPr, in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..study.config import PRESETS


def add_parser(commands) -> None:
    study = commands.add_parser(
        "study",
        help="collect, tune each optimizer's lr, train fresh verdict seeds, evaluate closed loop, "
        "write report.md",
    )
    study.add_argument(
        "--preset",
        choices=PRESETS,
        default="default",
        help="a preset shipped in the package (dopr_robot/study/presets/): quick (a pipeline "
        "check, ~1.5 min), default (<= 20 min on 2 CPU cores), long (the default at twice "
        "the steps, ~28 min), conditioning (ill-conditioned inputs, ~60 min), horizon (the "
        "push chain, where converged policies lose success with H, ~40 min), full "
        "(GPU-sized), benchmarks (PushT with competent policies on the score, cluster-sized; "
        "extra pusht), benchmarks-cpu "
        "(PushT, robosuite Lift/Stack, <= 90 min; PushT not competent there)",
    )
    study.add_argument("--config", type=Path, help="a study TOML instead of a preset")
    study.add_argument("--out", type=Path, help="study directory (default: runs/<name>)")
    study.add_argument("--workers", type=int, help="parallel processes (default: the config's)")
    study.add_argument(
        "--overwrite", action="store_true", help="delete the study directory and start again"
    )
    study.add_argument(
        "--readme",
        type=Path,
        help="also write the generated results section into this Markdown file (between its "
        "study-results markers; `make results` uses docs/results.md) and copy the figures "
        "beside it under results/",
    )
    study.add_argument(
        "--export-train-commands",
        type=Path,
        metavar="SCRIPT",
        help="collect the demonstrations, then write the trainings as torchrun commands to "
        "this script (to run on GPUs or nodes) instead of training here",
    )
    study.add_argument(
        "--device",
        help="where policies plan in evaluation: auto | cpu | cuda[:N] (default: the config's, "
        "auto); envs step on the CPU",
    )
    study.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: a process pool of --workers here; ray: Ray tasks on a cluster "
        "(needs the cluster extra; the study directory on a filesystem every node sees)",
    )
    study.add_argument(
        "--address", help="--backend ray: the cluster to join (default: start Ray locally)"
    )
    study.add_argument("--quiet", action="store_true", help="no progress bar")
    study.set_defaults(func=_study)


def _study(args: argparse.Namespace) -> int:
    from ..config_io import assign_flag
    from ..errors import UserError
    from ..study.config import load_study, preset_path
    from ..study.readme import update_readme
    from ..study.report import verdict_lines
    from ..study.runner import run_study

    if args.address is not None and args.backend != "ray":
        raise UserError("--address is for --backend ray")
    config = load_study(args.config if args.config else preset_path(args.preset))
    if args.workers is not None:
        assign_flag(config, "workers", args.workers)
    if args.device is not None:
        assign_flag(config, "device", args.device)
    if args.readme is not None and not args.readme.is_file():
        raise UserError(f"{args.readme} does not exist; --readme needs the file to update")
    root = args.out or Path("runs") / config.name
    if args.export_train_commands is not None:
        from ..study.export import export_train_commands
        from ..study.runner import collect_only

        collect_only(config, root, overwrite=args.overwrite)
        count = export_train_commands(config, root, args.export_train_commands)
        print(
            f"{count} training commands written to {args.export_train_commands}; run them, then "
            "this command again (the verdict runs follow once the tuning runs are trained), and "
            "at the end the same `dopr-robot study` command without --export-train-commands"
        )
        return 0
    summary = run_study(
        config,
        root,
        overwrite=args.overwrite,
        progress=not args.quiet,
        backend=args.backend,
        address=args.address,
    )
    print("\n".join(line for line in verdict_lines(summary) if line))
    print(f"report: {root / 'report.md'}")
    if args.readme is not None:
        update_readme(args.readme, root, summary, config)
        print(f"results section written into {args.readme}")
    return 0
