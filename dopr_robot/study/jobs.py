"""The study's units of work, each safe to rerun: it skips what is finished and resumes the rest.

They run in worker processes (top-level functions, picklable arguments) or in-process; each
returns a short dict for the progress line. A run that diverges is a result, not a crash: the
trainer keeps its last finite checkpoint, and `diverged.json` records where it stopped; the
summary counts it as failing every episode.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..envs.collect import collect
from ..errors import UserError
from ..eval.config import EvalConfig
from ..eval.sweep import evaluate
from ..stop import die_with_parent
from ..train import TrainingDiverged, train
from ..train.checkpoint import read_trainer_state
from ..train.run_dir import RunDir, differing_run_settings
from .config import StudyConfig, TaskSpec
from .plan import Run, collect_config, data_path, run_configs, task_of

DIVERGED = "diverged.json"


def init_worker(threads: int, parent: int | None = None) -> None:
    """Each worker process gets its share of the cores (torch would otherwise take them all),
    and ends when the study process that started it (`parent`) ends, however that ends."""
    import torch

    if parent is not None:
        die_with_parent(parent)
    torch.set_num_threads(threads)


def collect_task(task: TaskSpec, root: str, seed: int | None = None) -> dict:
    """One demonstration set of a task (the shared one, or data seed `seed`'s), collected once;
    a partial store is resumed."""
    out = data_path(Path(root), task, seed)
    config = collect_config(task, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = collect(config, out, resume=out.exists(), progress=False)
    return {"job": f"collect {out.stem}", "episodes": result.episodes}


def finished_step(directory: Path) -> int | None:
    """The step of the run's newest checkpoint; None before its first."""
    checkpoint = RunDir(directory).latest_checkpoint()
    if checkpoint is None:
        return None
    return int(read_trainer_state(checkpoint)["step"])


def diverged(directory: Path) -> dict | None:
    path = directory / DIVERGED
    return json.loads(path.read_text()) if path.exists() else None


def train_and_validate(config: StudyConfig, root: str, run: Run) -> dict:
    """A tuning run: train it (or finish it), then evaluate it on the validation seeds."""
    root_path = Path(root)

    def validate(seconds: dict[str, float]) -> None:
        with timed(seconds, "validation episodes"):
            _evaluate(config, root_path, run, "validation", video=False)

    return _train_then(config, root_path, run, "tune", validate)


def train_and_test(config: StudyConfig, root: str, run: Run, video: bool) -> dict:
    """A verdict run: train it (or finish it), evaluate it on the test seeds (the verdict), then
    its earlier budget checkpoints on the same test seeds (success vs training step; the last
    budget point is the verdict's own evaluation)."""
    root_path = Path(root)
    task = task_of(config, run.cell.task)

    def test(seconds: dict[str, float]) -> None:
        with timed(seconds, "test episodes"):
            _evaluate(config, root_path, run, "test", video=video)
        with timed(seconds, "budget checkpoints"):
            for step in config.budget_steps(task):
                if step != config.train_steps(task):
                    _evaluate(config, root_path, run, "test", video=False, step=step)

    return _train_then(config, root_path, run, "verdict", test)


def _train_then(
    config: StudyConfig,
    root: Path,
    run: Run,
    job: str,
    evaluations: Callable[[dict[str, float]], None],
) -> dict:
    """Train the run (or finish it), then, unless it diverged, run its `evaluations`; returns
    the progress line's dict with the wall seconds per kind of work."""
    seconds: dict[str, float] = {}
    with timed(seconds, "train"):
        directory = _train(config, root, run)
    if diverged(directory) is None:
        evaluations(seconds)
    return {"job": f"{job} {directory.relative_to(root / 'runs')}", "seconds": seconds}


@contextmanager
def timed(seconds: dict[str, float], kind: str):
    """Add the wall seconds of the block to seconds[kind]: a worker's time per kind of work, and
    the runner's per stage."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - started


def _train(config: StudyConfig, root_path: Path, run: Run) -> Path:
    """Train one run to its last step unless it finished or diverged; returns its directory."""
    directory = run.directory(root_path)
    train_config, policy_config = run_configs(config, root_path, run)
    _check_trained_as_planned(directory, train_config.to_dict(), policy_config.to_dict())
    done = finished_step(directory)
    if diverged(directory) is None and done != train_config.steps:
        resume = done is not None
        if not resume and directory.exists():
            shutil.rmtree(directory)  # killed before its first checkpoint: nothing to keep
        try:
            train(train_config, policy_config, resume=resume, progress=False)
        except TrainingDiverged as error:
            (directory / DIVERGED).write_text(json.dumps({"message": str(error)}))
    return directory


def _check_trained_as_planned(directory: Path, train: dict, policy: dict) -> None:
    """A run trained elsewhere (exported commands) or by hand must be the run the study plans;
    a moved study (runs and data together) is the same study."""
    run = RunDir(directory)
    if not run.config.exists():
        return
    found = differing_run_settings(run.read_config(), {"train": train, "policy": policy})
    if found is not None:
        section, differing = found
        raise UserError(
            f"{directory} was trained with other {section} settings ({', '.join(differing)}) "
            "than this study plans; move it away or rerun the study with --overwrite"
        )


def _evaluate(
    config: StudyConfig, root: Path, run: Run, split: str, video: bool, step: int | None = None
) -> None:
    """One sweep of the run's last checkpoint (or of the one at `step`, into eval/budget/)."""
    task = task_of(config, run.cell.task)
    if step is not None:
        out, checkpoint = run.budget_dir(root, step), RunDir(run.directory(root)).checkpoint(step)
    else:
        out = run.validation_dir(root) if split == "validation" else run.test_dir(root)
        checkpoint = run.directory(root)
    if _evaluation_done(out, task, video):
        return
    episodes = task.validation_episodes if split == "validation" else task.test_episodes
    eval_config = EvalConfig(
        checkpoint=str(checkpoint),
        task_horizons=list(task.horizons),
        episodes=episodes,
        split=split,
        execute=task.execute,
        n_envs=min(config.eval_envs, episodes),
        video=video,
        video_episodes=config.video_episodes,
        device=config.device,
        bf16=bool(config.train_values(task).get("bf16", False)),  # as the runs trained
        out=str(out),
    )
    evaluate(eval_config, resume=out.exists(), progress=False)


def _evaluation_done(out: Path, task: TaskSpec, video: bool) -> bool:
    if not (out / "results.json").exists():
        return False
    if video:  # videos are written after results.json; a kill in between leaves them missing
        return all((out / "videos" / f"H{h:04d}.mp4").exists() for h in task.horizons)
    return True
