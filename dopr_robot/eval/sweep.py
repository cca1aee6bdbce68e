"""The task-horizon sweep of one checkpoint: episodes, aggregates, results.json, plot, videos.

    evaluate(EvalConfig(checkpoint="runs/x", task_horizons=[1, 2, 4, 8], episodes=50))

Three steps, one function each: `prepare_sweep` (settings, env, policy, probe),
`run_sweep` (the episodes) and `write_sweep` (results.json, episodes.csv, plot, videos). The env
comes from the demonstrations the checkpoint was trained on unless given (`environment.py`). Per
cell (H x sampler steps) it records success with a Wilson 95 %
interval, mean sub-goals done, mean failure step (the step at which failed episodes ended), error
count, time per episode and the latency of one action chunk at batch 1. Per sampler setting: AUC
and H50 over the swept H; with the continuous score (`Episode.score`), its mean per cell and its
AUC per sampler setting.

Resumable: every finished episode is appended to `episodes.jsonl` at once; `resume=True` skips
the (H, steps, seed) triples already there. The outputs (`results.json`, `episodes.csv`,
`success_vs_horizon.png`, `videos/`) are rebuilt from that file at the end.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config_io import differing_settings
from ..devices import resolve_device
from ..disk import write_text_atomically, writing
from ..errors import UserError
from ..folder_lock import FolderLock, empty_folder, has_content
from ..train.checkpoint import load_policy, read_config, resolve_checkpoint
from ..train.run_dir import RunDir
from .agents import PolicyAgent
from .config import EvalConfig
from .environment import check_env_fits_policy, resolve_environment, with_images_if_read
from .plots import plot_success_vs_horizon
from .results import build_results, write_episodes_csv
from .rollout import Episode, run_episodes
from .schema import validate
from .seeds import episode_seeds
from .video import tile, write_video

#: settings added after sweeps were first saved, and what an older saved sweep meant by them
EVAL_BEFORE_THEY_EXISTED = {"env_settings": {}}
#: settings that change no episode: a resume may change them
NOT_COMPARED = ("video", "device", "bf16")


def _check_same_config(path: Path, config: EvalConfig) -> None:
    """A resumed sweep must be the sweep that was started; the first run records it."""
    mine = {k: v for k, v in config.to_dict().items() if k not in NOT_COMPARED}
    if not path.exists():
        path.write_text(json.dumps(mine, indent=2))
        return
    # settings added later meant, for sweeps started before them, what their defaults mean
    saved = {**EVAL_BEFORE_THEY_EXISTED, **json.loads(path.read_text())}
    # the checkpoint counts relative to the output folder, so a moved run still resumes
    differing = differing_settings(
        saved, mine, ignored=NOT_COMPARED, anchor="out", paths=("checkpoint",)
    )
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


@dataclass
class SweepPlan:
    """Everything a sweep needs, settled (and checked against the env) before it runs."""

    config: EvalConfig
    checkpoint: Path
    saved: dict[str, Any]
    """the checkpoint's config.json"""
    policy: Any
    env_id: str
    env_kwargs: dict[str, Any]
    fps: int
    """the env's frame rate, for videos"""
    seeds: list[int]
    out: Path
    sampler_axis: list[int | None]
    """sampler steps to sweep (None: a regression policy, which has no sampler)"""


def evaluate(
    config: EvalConfig, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the sweep and write the outputs; returns the results dict (also results.json)."""
    plan = prepare_sweep(config, resume, overwrite)
    # one writer per output folder: a second eval into it would append to the same episode log
    with FolderLock(plan.out, "evaluation"):
        if overwrite:
            empty_folder(plan.out)
        _check_same_config(plan.out / "eval_config.json", config)
        rows, latency = run_sweep(plan, progress)
        return write_sweep(plan, rows, latency)


def prepare_sweep(config: EvalConfig, resume: bool, overwrite: bool) -> SweepPlan:
    """Check the settings, resolve the env, load the policy and probe the env with it; nothing
    is written (`evaluate` makes or clears the output folder once it holds its lock)."""
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
    run = RunDir.of_checkpoint(checkpoint)
    env_id, env_kwargs = resolve_environment(config, saved["train"], run.path)
    policy = load_policy(checkpoint, ema=config.ema, device=device)
    env_kwargs = with_images_if_read(env_id, env_kwargs, policy)
    fps = check_env_fits_policy(env_id, env_kwargs, policy, min(config.task_horizons))
    if config.execute is not None and not 1 <= config.execute <= policy.config.action_horizon:
        raise UserError(
            f"--execute must be between 1 and the policy's Ta={policy.config.action_horizon}"
        )
    out = Path(config.out or run.sweep_dir(checkpoint, config.split))
    if has_content(out) and not resume and not overwrite:
        raise UserError(f"{out} already exists; pass --resume to finish it or --overwrite")
    sampler_axis: list[int | None] = [None]
    if policy.config.kind != "regression":
        sampler_axis = list(config.inference_steps or [policy.config.inference_steps])
    return SweepPlan(
        config, checkpoint, saved, policy, env_id, env_kwargs, fps, seeds, out, sampler_axis
    )


def run_sweep(plan: SweepPlan, progress: bool) -> tuple[list[dict], dict[int | None, float]]:
    """The episodes not yet in `episodes.jsonl`, each appended as it finishes; returns every
    row (older ones included) and the chunk latency per sampler setting."""
    config = plan.config
    rows_path = plan.out / "episodes.jsonl"
    rows = read_episode_rows(rows_path)
    done = {(r["task_horizon"], r["inference_steps"], r["seed"]) for r in rows}
    latency: dict[int | None, float] = {}
    kept = f"the episodes already in {rows_path.name} are kept; free space and rerun with --resume"
    with writing(rows_path, kept), rows_path.open("a") as log:
        for steps in plan.sampler_axis:
            variant = _with_sampler_steps(plan.policy, steps)
            latency[steps] = chunk_latency_ms(variant)
            agent = PolicyAgent(variant, execute=config.execute, bf16=config.bf16)
            for horizon in config.task_horizons:
                todo = [s for s in plan.seeds if (horizon, steps, s) not in done]
                batch = max(config.n_envs * 2, 1)
                for start in range(0, len(todo), batch):
                    episodes = run_episodes(
                        plan.env_id,
                        agent,
                        todo[start : start + batch],
                        horizon,
                        env_kwargs=plan.env_kwargs,
                        n_envs=config.n_envs,
                        vector=config.vector,
                        progress=progress,
                    )
                    for episode in episodes:
                        episode.inference_steps = steps
                        rows.append(episode.to_dict())
                        log.write(json.dumps(rows[-1]) + "\n")
                    log.flush()
    return rows, latency


def write_sweep(plan: SweepPlan, rows: list[dict], latency: dict[int | None, float]) -> dict:
    """results.json (checked against its schema), episodes.csv, the plot and the videos."""
    config, out = plan.config, plan.out
    results = build_results(
        config,
        plan.checkpoint,
        plan.saved,
        plan.env_id,
        plan.env_kwargs,
        plan.seeds,
        rows,
        latency,
    )
    problems = validate(results)
    assert not problems, problems  # a bug, not a user error: the writer and schema disagree
    write_text_atomically(out / "results.json", json.dumps(results, indent=2))
    with writing(out / "episodes.csv"):
        write_episodes_csv(out / "episodes.csv", results["episodes"])
    label = f"{Path(plan.saved['train']['out']).name} ({plan.checkpoint.name})"
    plot_success_vs_horizon([results], [label], out / "success_vs_horizon.png")
    if config.video:
        _videos(plan, results, plan.sampler_axis[-1])
    return results


def read_episode_rows(path: Path) -> list[dict]:
    """The rows of `episodes.jsonl` (rows of an older sweep get today's fields, score None). A
    last line cut short (the process was stopped, or the disk filled, while writing it) is
    dropped from the file, and that episode runs again; a bad line elsewhere is a sentence."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(Episode.from_row(json.loads(line)).to_dict())
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            if number < len(lines):
                raise UserError(f"{path} line {number} is not an episode row ({error})") from None
            with writing(path):
                path.write_text("".join(lines[:-1]))
    return rows


def _with_sampler_steps(policy, steps: int | None):
    variant = copy.deepcopy(policy)
    if steps is not None:
        variant.config.inference_steps = int(steps)
    return variant


def _videos(plan: SweepPlan, results: dict, steps: int | None) -> None:
    """Per H: failed episodes first (always kept), then successes, up to `video_episodes`;
    re-rendered exactly (noise is keyed by seed and chunk). Names: videos/H0004.mp4."""
    config = plan.config
    variant = _with_sampler_steps(plan.policy, steps)
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
            plan.env_id,
            PolicyAgent(variant, execute=config.execute, bf16=config.bf16),
            sorted(chosen),
            horizon,
            env_kwargs=plan.env_kwargs,
            n_envs=len(chosen),
            record=True,
        )
        write_video(plan.out / "videos" / f"H{horizon:04d}.mp4", tile(episodes), plan.fps)
