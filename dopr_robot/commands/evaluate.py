"""`dopr-robot eval` (task-horizon sweep of a checkpoint) and `dopr-robot render` (one video)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..threads import add_threads_flag
from .env_flags import add_env_flags, env_id_from, env_settings_from

BF16_HELP = "bf16 autocast for the policy's forward on CUDA (ignored on a CPU)"
DEVICE_HELP = "where the policy plans: auto (CUDA if available) | cpu | cuda[:N]; envs use the CPU"


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def add_parser(commands) -> None:
    evaluate = commands.add_parser("eval", help="closed-loop success across task horizons")
    evaluate.add_argument("--ckpt", type=Path, required=True, help="checkpoint or run directory")
    evaluate.add_argument("--task-horizons", type=_ints, default=[1, 2, 4, 8], help="e.g. 1,2,4,8")
    evaluate.add_argument("--episodes", type=int, default=50, help="episodes per horizon")
    evaluate.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="seed list: test (reporting) or validation (choosing)",
    )
    add_env_flags(evaluate, "env id or module:Class (default: the demonstrations' env)")
    evaluate.add_argument(
        "--perturbation", type=float, help="process noise (default: as collected)"
    )
    evaluate.add_argument(
        "--inference-steps", type=_ints, help="sampler steps to sweep, e.g. 2,5,10"
    )
    evaluate.add_argument("--execute", type=int, help="actions executed per chunk (default Ta)")
    evaluate.add_argument("--live", action="store_true", help="live weights instead of EMA")
    evaluate.add_argument("--n-envs", type=int, default=10, help="envs stepped together")
    evaluate.add_argument(
        "--async",
        dest="vector",
        action="store_const",
        const="async",
        default="sync",
        help="AsyncVectorEnv (one process per env)",
    )
    evaluate.add_argument("--video", action="store_true", help="a tiled mp4 per horizon")
    evaluate.add_argument(
        "--all-checkpoints",
        action="store_true",
        help="every checkpoint of the run: validation loss beside success, rank correlation",
    )
    evaluate.add_argument("--device", default="auto", help=DEVICE_HELP)
    evaluate.add_argument("--bf16", action="store_true", help=BF16_HELP)
    evaluate.add_argument("--out", type=Path, help="output directory")
    evaluate.add_argument("--resume", action="store_true", help="finish an interrupted eval")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing eval")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_flag(evaluate)
    evaluate.set_defaults(func=_evaluate)

    render = commands.add_parser("render", help="render one episode of a checkpoint to mp4")
    render.add_argument("--ckpt", type=Path, required=True, help="checkpoint or run directory")
    render.add_argument("--seed", type=int, required=True, help="episode seed")
    render.add_argument("--task-horizon", type=int, required=True, help="H")
    render.add_argument("--out", type=Path, required=True, help="output .mp4")
    add_env_flags(render, "env id or module:Class (default: the demonstrations' env)")
    render.add_argument("--perturbation", type=float, help="process noise (default: as collected)")
    render.add_argument("--execute", type=int, help="actions executed per chunk (default Ta)")
    render.add_argument("--device", default="auto", help=DEVICE_HELP)
    render.add_argument("--bf16", action="store_true", help=BF16_HELP)
    render.add_argument("--overwrite", action="store_true", help="replace an existing file")
    add_threads_flag(render)
    render.set_defaults(func=_render)


def _evaluate(args: argparse.Namespace) -> int:
    from ..eval.config import EvalConfig
    from ..eval.sweep import evaluate

    config = EvalConfig.from_dict(
        dict(
            checkpoint=str(args.ckpt),
            task_horizons=args.task_horizons,
            episodes=args.episodes,
            split=args.split,
            env_id=env_id_from(args),
            env_settings=env_settings_from(args),
            perturbation=args.perturbation,
            inference_steps=args.inference_steps,
            execute=args.execute,
            ema=not args.live,
            n_envs=args.n_envs,
            vector=args.vector,
            video=args.video,
            device=args.device,
            bf16=args.bf16,
            out=str(args.out) if args.out else None,
        ),
        "eval flags",
        flags=True,
    )
    if args.all_checkpoints:
        from ..eval.checkpoint_sweep import evaluate_checkpoints

        summary = evaluate_checkpoints(args.ckpt, config, progress=not args.quiet)
        for row in summary["checkpoints"]:
            print(
                f"{row['checkpoint']}  val loss {row['val_loss']}  EMA {row['val_loss_ema']}"
                f"  AUC {row['auc']:.3f}"
            )
        for key in ("val_loss", "val_loss_ema"):
            rho = summary[f"spearman_{key}_vs_auc"]
            print(f"Spearman({key}, AUC) = {'n/a' if rho is None else f'{rho:.2f}'}")
        return 0
    results = evaluate(
        config, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
    )
    for cell in results["cells"]:
        steps = "" if cell["inference_steps"] is None else f"  steps {cell['inference_steps']}"
        score = "n/a" if cell["mean_score"] is None else f"{cell['mean_score']:.3f}"
        print(
            f"H={cell['task_horizon']:<5}{steps}  success {cell['success_rate']:.2f} "
            f"[{cell['wilson_low']:.2f}, {cell['wilson_high']:.2f}]  score {score}  "
            f"sub-goals {cell['mean_subgoals_done']:.2f}  errors {cell['errors']}"
        )
    for curve in results["curves"]:
        cells = [c for c in results["cells"] if c["inference_steps"] == curve["inference_steps"]]
        shortest = min(cells, key=lambda c: c["task_horizon"])
        h50 = "not reached within the sweep" if curve["h50"] is None else f"{curve['h50']:.1f}"
        if shortest["success_rate"] == 0:
            h50 = "undefined (no success at the shortest H)"
        score_auc = "n/a" if curve["score_auc"] is None else f"{curve['score_auc']:.3f}"
        print(f"AUC {curve['auc']:.3f}   score AUC {score_auc}   H50 {h50}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from ..devices import resolve_device
    from ..eval.agents import PolicyAgent
    from ..eval.config import EvalConfig
    from ..eval.environment import check_env_fits_policy, resolve_environment, with_images_if_read
    from ..eval.rollout import run_episodes
    from ..eval.video import tile, write_video
    from ..train.checkpoint import load_policy, read_config, resolve_checkpoint

    if args.out.exists() and not args.overwrite:
        raise UserError(f"{args.out} already exists; pass --overwrite to replace it")
    if args.task_horizon < 1:
        raise UserError(f"--task-horizon must be at least 1, got {args.task_horizon}")
    checkpoint = resolve_checkpoint(args.ckpt)
    config = EvalConfig.from_dict(
        dict(
            checkpoint=str(checkpoint),
            env_id=env_id_from(args),
            env_settings=env_settings_from(args),
            perturbation=args.perturbation,
            execute=args.execute,
            device=args.device,
            bf16=args.bf16,
        ),
        "render flags",
        flags=True,
    )
    env_id, kwargs = resolve_environment(
        config, read_config(checkpoint)["train"], checkpoint.parent.parent
    )
    policy = load_policy(checkpoint, device=resolve_device(config.device))
    kwargs = with_images_if_read(env_id, kwargs, policy)
    fps = check_env_fits_policy(env_id, kwargs, policy, args.task_horizon)
    try:
        agent = PolicyAgent(policy, execute=config.execute, bf16=config.bf16)
    except ValueError as error:
        raise UserError(str(error)) from None
    episode = run_episodes(
        env_id, agent, [args.seed], args.task_horizon, env_kwargs=kwargs, n_envs=1, record=True
    )[0]
    write_video(args.out, tile([episode], columns=1), fps=fps)
    outcome = "success" if episode.success else "failure"
    print(
        f"{args.out}: seed {args.seed}, H={args.task_horizon}, {outcome} "
        f"({episode.subgoals_done}/{args.task_horizon} sub-goals, score {episode.score:.3f}, "
        f"{episode.length} steps)"
    )
    return 0
