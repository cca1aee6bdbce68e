"""The task-horizon sweep of one checkpoint: episodes, aggregates, results.json, plot, videos.

    evaluate(EvalConfig(checkpoint="runs/x", task_horizons=[1, 2, 4, 8], episodes=50))

The env comes from the demonstrations the checkpoint was trained on (their `env_id` and collect
settings) unless given. Per cell (H x sampler steps) it records success with a Wilson 95 %
interval, mean sub-goals done, mean failure step (the step at which failed episodes ended), error
count, time per episode and the latency of one action chunk at batch 1. Per sampler setting: AUC
and H50 over the swept H.

Resumable: every finished episode is appended to `episodes.jsonl` at once; `resume=True` skips
the (H, steps, seed) triples already there. The outputs (`results.json`, `episodes.csv`,
`success_vs_horizon.png`, `videos/`) are rebuilt from that file at the end.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config_io import differing_settings_with_paths, moved_path
from ..devices import resolve_device
from ..envs.adapter import adapter_for
from ..errors import UserError
from ..train.checkpoint import load_policy, read_config, resolve_checkpoint
from .agents import PolicyAgent
from .config import EvalConfig
from .plots import plot_success_vs_horizon
from .results import build_results, write_episodes_csv
from .rollout import Episode, run_episodes
from .schema import validate
from .seeds import episode_seeds
from .video import tile, write_video

#: settings added after sweeps were first saved, and what an older saved sweep meant by them
EVAL_BEFORE_THEY_EXISTED = {"env_settings": {}}


def resolve_environment(
    config: EvalConfig, train: dict, run: Path | None = None
) -> tuple[str, dict[str, Any]]:
    """The env id and make kwargs: as collected, unless the config says otherwise."""
    attrs: dict[str, Any] = {}
    try:
        from ..datasets import ReplayBuffer

        data = train["data"] if run is None else moved_path(train["data"], train["out"], run)
        attrs = dict(ReplayBuffer.open(data).attrs)
    except Exception:  # noqa: BLE001 - the store may be gone; then --env must say it
        attrs = {}
    collected = attrs.get("collect") or {}
    if not collected:
        try:
            collected = env_from_robomimic(attrs.get("env_args")) or {}
        except UserError:
            if config.env_id is None:
                raise
    env_id = config.env_id or collected.get("env_id")
    if env_id is None:
        raise UserError(
            "the checkpoint's demonstrations do not name their env (not collected by "
            "dopr-robot collect nor converted from a robomimic file with env_args, or moved); "
            "pass --env (and --perturbation)"
        )
    kwargs = dict(collected.get("env_kwargs", {})) if env_id == collected.get("env_id") else {}
    perturbation = config.perturbation
    if perturbation is None:
        perturbation = (
            collected.get("perturbation", 0.0) if env_id == collected.get("env_id") else 0.0
        )
    kwargs["perturbation"] = float(perturbation)
    kwargs.update(config.env_settings)
    return env_id, kwargs


def env_from_robomimic(env_args: Any) -> dict[str, Any] | None:
    """The env a converted robomimic dataset was recorded in, from its `env_args` (kept by
    `data convert`): `robosuite/<env_name>` with the recorded env_kwargs (controller config
    included, checked by the robosuite adapter), or None when the store has none."""
    if not isinstance(env_args, dict) or "env_name" not in env_args:
        return None
    from ..envs.robosuite_tasks import ROBOSUITE_IDS

    env_id = f"robosuite/{env_args['env_name']}"
    if env_args.get("type", 1) != 1 or env_id not in ROBOSUITE_IDS:
        raise UserError(
            f"the demonstrations were recorded in {env_args['env_name']!r} (env type "
            f"{env_args.get('type')}); the robomimic tasks evaluated here are "
            f"{', '.join(ROBOSUITE_IDS)}"
        )
    return {"env_id": env_id, "env_kwargs": {"env_kwargs": dict(env_args.get("env_kwargs", {}))}}


def with_images_if_read(env_id: str, env_kwargs: dict[str, Any], policy) -> dict[str, Any]:
    """Turn on the env's camera observations when the policy reads an image (envs whose
    observations are their own, like a user's gymnasium env, have no such switch)."""
    reads_images = any(policy.shape_meta.is_image(k) for k in policy.config.obs_keys)
    if reads_images and adapter_for(env_id).has_image_switch:
        return {**env_kwargs, "image": True}
    return env_kwargs


def check_env_fits_policy(env_id: str, env_kwargs: dict[str, Any], policy, horizon: int) -> int:
    """One sentence when the env cannot run the policy (a missing or differently shaped
    observation key, another action size, or whatever the env itself lacks); returns the env's
    frame rate for videos."""
    probe = adapter_for(env_id).probe(**{**env_kwargs, "task_horizon": horizon})
    observed = probe.observation_shapes
    for key in policy.config.obs_keys:
        wanted = tuple(policy.shape_meta.obs[key])
        if key not in observed:
            raise UserError(
                f"the policy reads observation {key!r}, which {env_id} does not give "
                f"(it gives {sorted(observed)}); the store's keys do not match the env"
            )
        if observed[key] != wanted:
            raise UserError(
                f"the policy reads {key!r} of shape {list(wanted)}, {env_id} gives "
                f"{list(observed[key])}; the store's keys do not match the env"
            )
    if probe.action_shape != (policy.action_dim,):
        raise UserError(
            f"the policy acts in {policy.action_dim} dimensions, {env_id} takes "
            f"{list(probe.action_shape)}; the store's actions do not match the env"
        )
    return probe.render_fps


def _check_same_config(path: Path, config: EvalConfig) -> None:
    """A resumed sweep must be the sweep that was started; the first run records it."""
    mine = {k: v for k, v in config.to_dict().items() if k not in ("video", "device", "bf16")}
    if not path.exists():
        path.write_text(json.dumps(mine, indent=2))
        return
    # settings added later meant, for sweeps started before them, what their defaults mean
    saved = {**EVAL_BEFORE_THEY_EXISTED, **json.loads(path.read_text())}
    # the checkpoint counts relative to the output folder, so a moved run still resumes
    differing = differing_settings_with_paths(saved, mine, "out", ("checkpoint",))
    if differing:
        raise UserError(
            f"{path.parent} was started with other settings ({', '.join(differing)}); resume "
            "with the same ones, or pass --overwrite"
        )


def chunk_latency_ms(policy, repeats: int = 20) -> float:
    """Wall time of one action chunk at batch 1 (what a robot waits for), median of repeats."""
    shapes = policy.shape_meta.obs
    obs = {}
    for key in policy.config.obs_keys:
        shape = (1, policy.config.obs_horizon, *shapes[key])
        obs[key] = torch.zeros(shape, dtype=torch.uint8 if len(shapes[key]) == 3 else torch.float32)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        policy.predict_action(obs, torch.Generator().manual_seed(0))
        times.append(time.perf_counter() - start)
    return float(np.median(times[2:]) * 1000)


def evaluate(
    config: EvalConfig, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the sweep and write the outputs; returns the results dict (also results.json)."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    for h in config.task_horizons:
        if h < 1:
            raise UserError(f"task horizons must be >= 1, got {h}")
    try:
        seeds = episode_seeds(config.split, config.episodes)
    except ValueError as error:
        raise UserError(str(error)) from None
    device = resolve_device(config.device)  # before anything is written
    checkpoint = resolve_checkpoint(config.checkpoint)
    saved = read_config(checkpoint)
    env_id, env_kwargs = resolve_environment(config, saved["train"], checkpoint.parent.parent)
    # the env must fit the policy before anything is written
    policy = load_policy(checkpoint, ema=config.ema, device=device)
    env_kwargs = with_images_if_read(env_id, env_kwargs, policy)
    fps = check_env_fits_policy(env_id, env_kwargs, policy, min(config.task_horizons))
    out = Path(
        config.out or checkpoint.parent.parent / "eval" / f"{checkpoint.name}-{config.split}"
    )
    if out.exists() and any(out.iterdir()) and not resume:
        if not overwrite:
            raise UserError(f"{out} already exists; pass --resume to finish it or --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_config(out / "eval_config.json", config)
    if config.execute is not None and not 1 <= config.execute <= policy.config.action_horizon:
        raise UserError(
            f"--execute must be between 1 and the policy's Ta={policy.config.action_horizon}"
        )
    sampler_axis: list[int | None] = [None]
    if policy.config.kind != "regression":
        sampler_axis = list(config.inference_steps or [policy.config.inference_steps])
    rows_path = out / "episodes.jsonl"
    rows = []
    if rows_path.exists():  # rows of an older sweep get today's fields (score None)
        rows = [Episode.from_row(json.loads(line)).to_dict() for line in rows_path.open()]
    done = {(r["task_horizon"], r["inference_steps"], r["seed"]) for r in rows}
    latency: dict[int | None, float] = {}
    with rows_path.open("a") as log:
        for steps in sampler_axis:
            variant = copy.deepcopy(policy)
            if steps is not None:
                variant.config.inference_steps = int(steps)
            latency[steps] = chunk_latency_ms(variant)
            agent = PolicyAgent(variant, execute=config.execute, bf16=config.bf16)
            for horizon in config.task_horizons:
                todo = [s for s in seeds if (horizon, steps, s) not in done]
                batch = max(config.n_envs * 2, 1)
                for start in range(0, len(todo), batch):
                    episodes = run_episodes(
                        env_id,
                        agent,
                        todo[start : start + batch],
                        horizon,
                        env_kwargs=env_kwargs,
                        n_envs=config.n_envs,
                        vector=config.vector,
                        progress=progress,
                    )
                    for episode in episodes:
                        row = {**episode.to_dict(), "inference_steps": steps}
                        rows.append(row)
                        log.write(json.dumps(row) + "\n")
                    log.flush()
    results = build_results(config, checkpoint, saved, env_id, env_kwargs, seeds, rows, latency)
    problems = validate(results)
    assert not problems, problems  # a bug, not a user error: the writer and schema disagree
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_episodes_csv(out / "episodes.csv", results["episodes"])
    label = f"{Path(saved['train']['out']).name} ({checkpoint.name})"
    plot_success_vs_horizon([results], [label], out / "success_vs_horizon.png")
    if config.video:
        _videos(config, out, env_id, env_kwargs, policy, results, sampler_axis[-1], fps)
    return results


def _videos(config, out, env_id, env_kwargs, policy, results, steps, fps) -> None:
    """Per H: failed episodes first (always kept), then successes, up to `video_episodes`;
    re-rendered exactly (noise is keyed by seed and chunk). Names: videos/H0004.mp4."""
    variant = copy.deepcopy(policy)
    if steps is not None:
        variant.config.inference_steps = int(steps)
    for horizon in config.task_horizons:
        rows = [
            r
            for r in results["episodes"]
            if r["task_horizon"] == horizon and r["inference_steps"] == steps
        ]
        chosen = [r["seed"] for r in rows if not r["success"]][: config.video_episodes]
        chosen += [r["seed"] for r in rows if r["success"]][: config.video_episodes - len(chosen)]
        if not chosen:
            continue
        episodes: list[Episode] = run_episodes(
            env_id,
            PolicyAgent(variant, execute=config.execute, bf16=config.bf16),
            sorted(chosen),
            horizon,
            env_kwargs=env_kwargs,
            n_envs=len(chosen),
            record=True,
        )
        write_video(out / "videos" / f"H{horizon:04d}.mp4", tile(episodes), fps)
