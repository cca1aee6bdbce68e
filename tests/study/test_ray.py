"""The study on Ray: the quick preset on a local Ray instance (started here, 2 CPUs) gives the
same per-run numbers as the local process pool, and a job whose worker dies is retried."""

from __future__ import annotations

import os
import sys

import pytest

from dopr_robot.study.config import load_study, preset_path
from dopr_robot.study.executors import RayExecutor
from dopr_robot.study.runner import run_study

from .conftest import per_run_numbers

ray = pytest.importorskip("ray")  # the `cluster` extra


@pytest.fixture(scope="module")
def local_ray():
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def test_the_quick_preset_on_ray_equals_the_local_pool(local_ray, study, tmp_path):
    root = tmp_path / "quick-ray"
    config = load_study(preset_path("quick"))
    run_study(config, root, progress=False, backend="ray")
    assert ray.is_initialized()  # the study joined the test's instance and left it running
    on_ray, local = per_run_numbers(root), per_run_numbers(study)
    assert len(on_ray) == 6 and on_ray == local  # 2 tuning + 4 verdict runs, run by run


def _dies_once(marker: str) -> dict:
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies mid-job
    return {"job": f"survived {os.getpid()}"}


def test_a_job_whose_worker_dies_is_retried(local_ray, tmp_path):
    class Bar:
        updates = 0

        def set_description(self, text):
            pass

        def set_postfix_str(self, text, refresh=False):
            self.last = text

        def update(self, n):
            Bar.updates += n

    bar = Bar()
    executor = RayExecutor(bar)
    executor.map("test", [(_dies_once, (str(tmp_path / "died"),))])
    assert (tmp_path / "died").exists() and Bar.updates == 1
    assert bar.last.startswith("survived")
    executor.close()
    assert ray.is_initialized()  # not the executor's to shut down
