"""Demonstrations from the scripted experts, written episode by episode into a `ReplayBuffer`.

Seeds: attempt k (counting from 0, failed attempts included) resets the env with `seed + k` and
seeds the expert's action noise with `SeedSequence([seed, k])`, so a store is a pure function of
its settings, and a resumed collection produces what an uninterrupted one would have.

Each committed episode is durable on its own (the store advances `meta/episode_ends` last). The
attributes `attempts` and `episode_seeds` are updated after each episode; if a kill lands between
the episode's commit and that update, `--resume` sees one more episode than recorded seeds and
recovers the record from the attempt counter (attempts run one at a time, in order).

Store keys: `state` float32 [T, D], `action` float32 [T, A], `action_executed` float32 [T, A],
and with images `image` uint8 [T, 96, 96, 3]. Row t holds the observation the expert saw, the
expert's clean action there (`action`, the label policies learn: DART-style, the noise explores
states but is not taught) and the noisy action that was executed (`action_executed`; equal to
`action` without noise). The root attribute `action_label = "clean"` says so; stores written
before it (no attribute) hold the executed action under `action` and still load. The final
observation of an episode is not stored. Provenance (env id, horizon, perturbation, expert,
noise, seed, settings) is in the root attributes.

Stores are zarr format 2 by default (`zarr_format=3` on request). The toolkit reads and appends
to both alike (same chunking and compression, no sharding), but diffusion_policy's own
`ReplayBuffer` runs on zarr 2.x, which opens only format 2: the default is the one every client
in the field can read. A resumed store keeps the format it was created with.
"""

from __future__ import annotations

import importlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets import ReplayBuffer
from ..disk import writing
from ..errors import DataError, UserError
from ..folder_lock import FolderLock
from .config import CollectConfig
from .experts import Expert
from .registry import expert_for, make

#: the store attribute saying what `action` holds (absent in older stores: the executed action)
ACTION_LABEL = "clean"
DEFAULT_ZARR_FORMAT = 2  # see the module docstring

#: stop when fewer than this share of attempts succeed (after MIN_ATTEMPTS_FOR_RATE attempts)
MIN_SUCCESS_RATE = 0.5
MIN_ATTEMPTS_FOR_RATE = 20


@dataclass
class CollectResult:
    path: Path
    episodes: int
    attempts: int
    successes_this_run: int
    attempts_this_run: int


def run_episode(env, expert, env_seed: int, expert_seed: int) -> tuple[dict, bool]:
    """One expert episode: the per-step arrays and whether it succeeded."""
    observation, info = env.reset(seed=env_seed)
    expert.reset(seed=expert_seed)
    rows: dict[str, list] = {key: [] for key in observation}
    rows["action"] = []
    rows["action_executed"] = []
    while True:
        executed, clean = expert.act_labelled(observation)
        for key, value in observation.items():
            rows[key].append(value)
        rows["action"].append(clean)
        rows["action_executed"].append(executed)
        observation, _, terminated, truncated, info = env.step(executed)
        if terminated or truncated:
            break
    episode = {key: np.stack(values) for key, values in rows.items()}
    return episode, bool(info["success"])


def expert_seed(seed: int, attempt: int) -> int:
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])


def collect(
    config: CollectConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    zarr_format: int | None = None,
) -> CollectResult:
    """Collect `config.episodes` demonstrations into the store at `out`; see the module docs."""
    config.check()
    expert = _expert(config)  # no expert, or a bad expert class: one sentence before any write
    out = Path(out)
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    if resume:
        if not out.exists():
            raise DataError(f"{out} does not exist; there is nothing to resume")
        with FolderLock(out, "demonstration store"):  # one writer at a time
            buffer = ReplayBuffer.open(out, mode="a")
            if zarr_format is not None and zarr_format != buffer.zarr_format:
                raise DataError(
                    f"{out} is zarr format {buffer.zarr_format}; --zarr-format {zarr_format} "
                    "applies to new stores (convert it with dopr-robot data convert --format)"
                )
            _check_same_settings(buffer, config)
            return _fill(buffer, config, expert, progress)
    if out.exists() and not overwrite:
        raise DataError(
            f"{out} already exists; pass --resume to add to it or --overwrite to replace it"
        )
    zarr_format = zarr_format or DEFAULT_ZARR_FORMAT
    if not out.exists():
        buffer = ReplayBuffer.create(out, zarr_format=zarr_format, attrs=_new_store_attrs(config))
        return _fill(buffer, config, expert, progress)
    # --overwrite: build beside the old store and swap only once the new one is complete
    work = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        buffer = ReplayBuffer.create(work, zarr_format=zarr_format, attrs=_new_store_attrs(config))
        result = _fill(buffer, config, expert, progress)
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
        os.replace(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    result.path = out
    return result


def _new_store_attrs(config: CollectConfig) -> dict:
    return {**config.attrs(), "attempts": 0, "action_label": ACTION_LABEL}


def _check_same_settings(buffer: ReplayBuffer, config: CollectConfig) -> None:
    recorded = buffer.attrs.get("collect")
    if not isinstance(recorded, dict):
        raise DataError(f"{buffer.path} was not written by `dopr-robot collect`; cannot resume it")
    if buffer.attrs.get("action_label") != ACTION_LABEL:
        raise DataError(
            f"{buffer.path} was collected before clean labels (its `action` is the executed "
            "action, and it has no `action_executed`); collect into a new store instead of "
            "resuming it"
        )
    wanted = config.to_dict()
    for key, value in wanted.items():
        if key == "episodes":
            continue  # asking for more (or the same) episodes is what resuming is for
        if recorded.get(key) != value:
            raise DataError(
                f"{buffer.path} was collected with {key}={recorded.get(key)!r}, not {value!r}; "
                "resume with the same settings or collect into a new store"
            )


def _fill(
    buffer: ReplayBuffer, config: CollectConfig, expert: Expert, progress: bool
) -> CollectResult:
    attrs = buffer.attrs
    attempts = int(attrs.get("attempts", 0))
    seeds = list(attrs.get("episode_seeds", []))
    outcomes = list(attrs.get("episode_success", []))
    if buffer.n_episodes == len(seeds) + 1:  # killed between an episode's commit and its record
        seeds.append(config.seed + attempts)
        outcomes.append(True if not config.keep_failed else None)
        attempts += 1
        buffer.update_attrs(attempts=attempts, episode_seeds=seeds, episode_success=outcomes)
    elif buffer.n_episodes != len(seeds):
        raise DataError(
            f"{buffer.path} holds {buffer.n_episodes} episodes but records "
            f"{len(seeds)} seeds; it was changed outside `dopr-robot collect`"
        )
    env = make(config.env_id, **config.make_kwargs())
    bar = ProgressBar(progress, config.episodes, buffer.n_episodes)
    run_attempts = run_successes = 0
    try:
        kept = "every episode committed before is kept; free space and rerun with --resume"
        with writing(buffer.path, kept):
            while buffer.n_episodes < config.episodes:
                episode, success = run_episode(
                    env, expert, config.seed + attempts, expert_seed(config.seed, attempts)
                )
                run_attempts += 1
                run_successes += success
                if success or config.keep_failed:
                    buffer.add_episode(episode)
                    seeds.append(config.seed + attempts)
                    outcomes.append(success)
                    bar(1, run_successes, run_attempts)
                else:
                    bar(0, run_successes, run_attempts)
                attempts += 1
                buffer.update_attrs(
                    attempts=attempts, episode_seeds=seeds, episode_success=outcomes
                )
                _check_success_rate(config, run_successes, run_attempts, buffer.n_episodes)
    finally:
        bar.close()
        env.close()
    return CollectResult(buffer.path, buffer.n_episodes, attempts, run_successes, run_attempts)


def _check_success_rate(config: CollectConfig, successes: int, attempts: int, kept: int) -> None:
    """Stop early when the expert fails too often for the demonstrations to be worth keeping."""
    if config.keep_failed or attempts < MIN_ATTEMPTS_FOR_RATE:
        return
    if successes < MIN_SUCCESS_RATE * attempts:
        raise DataError(
            f"the expert succeeded in only {successes} of {attempts} attempts "
            f"on {config.env_id} at task_horizon={config.task_horizon}, "
            f"perturbation={config.perturbation}, noise={config.noise}; lower the noise "
            f"or perturbation, or pass --keep-failed ({kept} episodes kept)"
        )


def _expert(config: CollectConfig):
    """The env's own expert, or the user's `module:Class` (an `Expert` subclass)."""
    if config.expert is None:
        return expert_for(config.env_id, noise=config.noise, **config.env_kwargs)
    module_name, _, class_name = config.expert.rpartition(":")
    try:
        expert_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise UserError(f"cannot import the expert {config.expert!r} (module:Class)") from None
    if not (isinstance(expert_class, type) and issubclass(expert_class, Expert)):
        raise UserError(f"{config.expert} is not a dopr_robot.envs.experts.Expert subclass")
    try:
        return expert_class(noise=config.noise)
    except (TypeError, ValueError) as error:
        raise UserError(f"cannot make the expert {config.expert}: {error}") from None


class ProgressBar:
    """tqdm over stored episodes, with the success rate of this run's attempts."""

    def __init__(self, enabled: bool, total: int, done: int):
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit="episode", desc="collect")

    def __call__(self, stored: int, successes: int, attempts: int) -> None:
        if self._bar is not None:
            self._bar.update(stored)
            self._bar.set_postfix(success=f"{successes}/{attempts}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
