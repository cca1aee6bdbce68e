"""Run a study end to end: collect → tune (train + validate) → choose lr → verdict runs (train +
test + budget checkpoints) → report. Each stage's wall time goes into invocations.jsonl.

Every stage skips what is already on disk, so rerunning the same command after an interruption
finishes the study without redoing finished runs or evaluations. The settings a study was started
with are kept in `study.json`; a rerun with other settings is refused (one sentence) unless
`overwrite`. Jobs run in `workers` spawned processes, each with cores/workers torch threads (two
single-threaded trainings beat one two-threaded one on this kind of small network), or as Ray
tasks on a cluster (`executors.py`); with `workers = 1` and the local backend everything runs in
this process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..config_io import differing_settings
from ..errors import UserError
from ..folder_lock import FolderLock, empty_folder, has_content
from . import jobs
from .config import StudyConfig
from .executors import COLLECT, TUNE, VERDICT, LocalExecutor, make_executor
from .plan import cells, collections, compared_optimizers, tuning_runs, verdict_runs
from .records import Invocation, StudySummary
from .report import write_report
from .summary import summarise, tune_with_extensions

#: one line per `run_study` call, so the report can give the study's total wall time
INVOCATIONS = "invocations.jsonl"

#: settings that change no run: how the work is spread, and `metric`, which only changes the
#: summary (recomputed from the runs' files on every invocation)
NOT_COMPARED = ("workers", "expected_minutes", "videos", "device", "metric", "margin")


#: settings added after studies were started, with the meaning a study.json without them has
STUDY_BEFORE_THEY_EXISTED = {"data_seeds": False}


def _comparable(config: StudyConfig) -> dict[str, Any]:
    values = json.loads(json.dumps(config.to_dict()))
    return {k: v for k, v in values.items() if k not in NOT_COMPARED}


def prepare_directory(config: StudyConfig, root: Path, overwrite: bool) -> None:
    record = root / "study.json"
    if has_content(root):
        if overwrite:
            empty_folder(root)  # all but the lock this process holds
        elif not record.exists():
            raise UserError(f"{root} exists and is not a study directory; choose another --out")
        else:
            saved = {**STUDY_BEFORE_THEY_EXISTED, **json.loads(record.read_text())}
            differing = differing_settings(saved, _comparable(config), ignored=NOT_COMPARED)
            if differing:
                raise UserError(
                    f"{root} holds a study started with other settings ({', '.join(differing)}); "
                    "rerun with the same ones to resume, or pass --overwrite or another --out"
                )
    root.mkdir(parents=True, exist_ok=True)
    if not record.exists():
        record.write_text(json.dumps(_comparable(config), indent=2))


def collect_only(config: StudyConfig, root: str | os.PathLike, *, overwrite: bool = False) -> None:
    """The first stage alone (for exporting the trainings to run elsewhere)."""
    root = Path(root)
    with FolderLock(root, "study"):
        prepare_directory(config, root, overwrite)
        executor = LocalExecutor(1, None)
        executor.map(COLLECT, _collect_jobs(config, str(root)))


def run_study(
    config: StudyConfig,
    root: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool = True,
    backend: str = "local",
    address: str | None = None,
) -> StudySummary:
    """Run (or finish) the study in `root`; returns the summary (also summary.json, report.md).
    `backend`: "local" (a process pool of `config.workers`) or "ray" (tasks on the Ray cluster
    at `address`, or a local Ray instance); the same jobs and files either way. A second study
    on the same `root` while this one runs is refused (`FolderLock`)."""
    with FolderLock(root, "study"):
        return _run_locked(config, Path(root), overwrite, progress, backend, address)


def _run_locked(
    config: StudyConfig,
    root: Path,
    overwrite: bool,
    progress: bool,
    backend: str,
    address: str | None,
) -> StudySummary:
    prepare_directory(config, root, overwrite)
    started = time.perf_counter()
    bar = _progress_bar(config) if progress else None
    try:
        executor = make_executor(backend, config.workers, bar, address)
    except BaseException:
        if bar is not None:
            bar.close()
        raise
    stages: dict[str, float] = {}
    try:
        _run_jobs(config, root, executor, bar, stages)
    except BaseException:  # a stop signal or a job's error: end the workers, do not wait
        executor.abort()
        raise
    finally:
        executor.close()
        if bar is not None:
            bar.close()
        work = {
            stage: {kind: round(seconds, 1) for kind, seconds in kinds.items()}
            for stage, kinds in executor.work.items()
            if kinds
        }
    with jobs.timed(stages, "summary (statistics)"):
        summary = summarise(config, root)
    return _write_outputs(config, root, summary, stages, work, time.perf_counter() - started)


def _progress_bar(config: StudyConfig):
    """One bar over every job the study plans (a grid extension adds to it later)."""
    from tqdm import tqdm

    verdict_total = len(cells(config)) * len(compared_optimizers(config)) * config.verdict_seeds
    total = len(collections(config)) + len(tuning_runs(config)) + verdict_total
    return tqdm(total=total, unit="job", desc="study")


def _run_jobs(config: StudyConfig, root: Path, executor, bar, stages: dict[str, float]) -> None:
    """The three stages of jobs: collect, tune (lr choice, with grid extensions), verdict."""
    root_arg = str(root.resolve())  # Ray workers may start in another directory
    planned_tuning = len(tuning_runs(config))
    with jobs.timed(stages, "collect"):
        executor.map(COLLECT, _collect_jobs(config, root_arg))
    submitted: set = set()

    def train(runs: list) -> None:
        """Train the tuning runs not yet submitted (a grid extension adds a few)."""
        todo = [r for r in runs if r not in submitted]
        submitted.update(todo)
        if bar is not None and len(submitted) > planned_tuning:
            bar.total += len(todo)
            bar.refresh()
        executor.map(TUNE, [(jobs.train_and_validate, (config, root_arg, r))
                            for r in _slowest_first(config, todo)])  # fmt: skip

    with jobs.timed(stages, "tune (train + validation episodes)"):
        _, choice, _ = tune_with_extensions(config, root, train)
    chosen = {key: entry["lr"] for key, entry in choice.items()}
    first_seed = config.verdict_seed_list[0]
    with jobs.timed(stages, "verdict (train + test episodes + budget checkpoints)"):
        executor.map(
            VERDICT,
            [
                (jobs.train_and_test, (config, root_arg, r, config.videos and r.seed == first_seed))
                for r in _slowest_first(config, verdict_runs(config, chosen))
            ],
        )


def _write_outputs(
    config: StudyConfig,
    root: Path,
    summary: StudySummary,
    stages: dict[str, float],
    work: dict[str, dict[str, float]],
    seconds: float,
) -> StudySummary:
    """This invocation's line in invocations.jsonl, then summary.json and report.md; `seconds`:
    this invocation's wall time (report.md and its plots take a few seconds after it and are
    not in the breakdown)."""
    stages = {name: round(value, 1) for name, value in stages.items()}
    invocation = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": seconds}
    with (root / INVOCATIONS).open("a") as log:
        log.write(json.dumps({**invocation, "stages": stages, "worker_seconds": work}) + "\n")
    with (root / INVOCATIONS).open() as log:
        invocations = [Invocation.model_validate_json(line) for line in log]
    summary = summary.model_copy(
        update={
            "seconds_this_invocation": seconds,
            "stage_seconds_this_invocation": stages,
            "invocations": invocations,
        }
    )
    (root / "summary.json").write_text(summary.to_json(), encoding="utf-8")
    write_report(config, root, summary)
    return summary


def _collect_jobs(config: StudyConfig, root: str) -> list:
    return [(jobs.collect_task, (task, root, seed)) for task, seed in collections(config)]


def _slowest_first(config: StudyConfig, todo: list) -> list:
    """The activation-wise optimizers' runs first, so no worker idles at the end."""
    return sorted(todo, key=lambda r: not config.optimizers[r.optimizer].name.startswith("dopr"))
