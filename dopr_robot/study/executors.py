"""Where a study's jobs run: this machine's process pool, or a Ray cluster.

Both take a stage's list of `(function, args)` jobs, run them, and advance the study's progress
bar as each one finishes; a job that raises stops the study with its error. Every job skips or
resumes what is already on disk, so running one twice is harmless — which is what lets Ray retry
a job whose worker died.

- `LocalExecutor`: `workers` spawned processes (each with cores / workers torch threads), or
  inline with `workers = 1`.
- `RayExecutor`: one Ray task per job (`num_cpus = 1`; `num_gpus = 1` for trainings when the
  cluster has GPUs), retried up to `RETRIES` times if its worker process dies. It joins the
  cluster at `address` (or starts a local Ray instance when none is given and none is running).
  The study directory must be on a filesystem every node sees at the same path.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from .. import stop
from ..errors import UserError
from . import jobs

Job = tuple[Callable, tuple]
BACKENDS = ("local", "ray")
#: how often Ray reruns a job whose worker process died (jobs resume from disk)
RETRIES = 3
#: the stages the runner maps jobs in (named once, so GPU_STAGES cannot drift from them)
COLLECT, TUNE, VERDICT = "collect", "tune", "verdict"
#: trainings ask Ray for a GPU when the cluster has any; everything else runs on CPUs
GPU_STAGES = (TUNE, VERDICT)


class _Bar:
    """The progress bar's share of an executor: one update per finished job, and the sum of the
    worker time each job reports."""

    def __init__(self, bar):
        self.bar = bar
        self.current = ""
        #: {stage: {kind of work: worker-seconds}}, from the jobs' own timings
        self.work: dict[str, dict[str, float]] = {}

    def stage(self, name: str) -> None:
        self.current = name
        if self.bar is not None:
            self.bar.set_description(name)

    def done(self, result: dict) -> None:
        work = self.work.setdefault(self.current, {})
        for kind, seconds in result.get("seconds", {}).items():
            work[kind] = work.get(kind, 0.0) + seconds
        if self.bar is not None:
            self.bar.set_postfix_str(result["job"][-60:], refresh=False)
            self.bar.update(1)


class LocalExecutor(_Bar):
    """Runs job lists in a spawned process pool (or inline), advancing one progress bar."""

    def __init__(self, workers: int, bar):
        super().__init__(bar)
        self.pool = None
        if workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            _quiet_resource_tracker()
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=jobs.init_worker,
                initargs=(threads, os.getpid()),
            )

    def map(self, stage: str, calls: list[Job]) -> None:
        self.stage(stage)
        if self.pool is None:
            for function, args in calls:
                self.done(function(*args))
            return
        pending: set[Future] = {self.pool.submit(function, *args) for function, args in calls}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                self.done(future.result())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def abort(self) -> None:
        """End the workers now (a stop signal, or another job's error): a job being run is
        killed, not waited for; what it was writing is atomic and resumes on the next run."""
        if self.pool is None:
            return
        workers = _pool_processes(self.pool)
        for process in workers:
            process.terminate()
        for process in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _quiet_resource_tracker() -> None:
    """Workers take named semaphores (numcodecs' Blosc lock, tqdm's lock); one ended by a stop
    signal cannot release them, so multiprocessing's resource tracker releases them at the end
    and warns that it did, in lines after the stop sentence. The tracker process takes its
    warning filters from `sys.warnoptions` when it starts, so that one warning is filtered
    there (the semaphores are still released)."""
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)


def _pool_processes(pool: ProcessPoolExecutor) -> list:
    """The pool's worker processes. Python 3.14 has `terminate_workers()`; before it the pool
    keeps them in `_processes`, the one private name used here."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _run_in_worker(function: Callable, args: tuple) -> dict:
    jobs.init_worker(1)  # one thread per task: Ray schedules one task per CPU
    return function(*args)


class RayExecutor(_Bar):
    """Runs job lists as Ray tasks on a cluster (or a local Ray instance)."""

    def __init__(self, bar, address: str | None = None):
        super().__init__(bar)
        try:
            import ray
        except ImportError:
            raise UserError("--backend ray needs Ray: pip install 'dopr-robot[cluster]'") from None
        self.ray = ray
        self.owns = not ray.is_initialized()
        if self.owns:
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    logging_level="ERROR",
                    log_to_driver=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as error:
                raise UserError(f"cannot join the Ray cluster at {address} ({error})") from None
            stop.reclaim()  # a stop signal ends the study's tasks, not Ray's way (see stop.py)
        self.gpus = ray.cluster_resources().get("GPU", 0) > 0
        self.task = ray.remote(max_retries=RETRIES, num_cpus=1)(_run_in_worker)
        self.pending: list = []

    def map(self, stage: str, calls: list[Job]) -> None:
        self.stage(stage)
        options = {"num_gpus": 1} if self.gpus and stage in GPU_STAGES else {}
        task = self.task.options(**options) if options else self.task
        self.pending = [task.remote(function, args) for function, args in calls]
        try:
            self._wait_all()
        except self.ray.exceptions.RayTaskError as error:
            self.abort()
            raise error.as_instanceof_cause() from None

    def _wait_all(self) -> None:
        """Collect the tasks as they finish. A stop signal is only noted inside Ray's wait (an
        exception raised there comes out as Ray's SystemError) and raised between waits; the
        timeout keeps that prompt."""
        with stop.deferred():
            while self.pending:
                finished, self.pending = self.ray.wait(self.pending, num_returns=1, timeout=0.5)
                if finished:
                    self.done(self.ray.get(finished[0]))
                stop.raise_pending()

    def abort(self) -> None:
        """Cancel the tasks still queued or running (their workers are killed)."""
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending = []

    def close(self) -> None:
        if self.owns:
            self.ray.shutdown()


def make_executor(backend: str, workers: int, bar, address: str | None = None):
    if backend == "ray":
        return RayExecutor(bar, address)
    if backend != "local":
        raise UserError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if address is not None:
        raise UserError("--address is for --backend ray")
    return LocalExecutor(workers, bar)
