"""Grading workers that the tests of one pytest process share (the `workers` fixture), for
autograde's `executor`: `workers(course)` (sandboxed) or `workers(course, unsafe=True)`.

Each worker's start costs about 2 s of CPU and its kernel template 1 to 3 more; a test that
grades a few short notebooks would pay that more than the grading. Workers are shared only
where they would be the same: the same course settings (nbgrader_config.py) and
environment, and the same libraries in the kernel template (a worker keeps its first
job's), so one pool per preload. Nothing of a submission reaches the next one
(test_template_kernel.py), so sharing changes no grade. Tests that look at the grader's
processes or its worker logs, or that change the environment of kernels, start their own
(autograde without `executor`); test_hostile.py leaves the shared ones, idle, out of what
it watches.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.config import CourseConfig


class SharedWorkers:
    """Pools of grading workers by course settings, environment and preload; see above."""

    JOBS = 2  # as most tests grade; a second worker starts only when two jobs wait

    def __init__(self, logs: Path):
        self.logs = logs
        self.pools: dict[tuple, ByPreload] = {}

    def __call__(self, course: CourseConfig, *, unsafe: bool = False) -> ByPreload:
        from grader.pipeline.autograde import local_executor

        environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        key = (course.config_file.read_bytes(), unsafe, tuple(sorted(environment.items())))
        if key not in self.pools:
            logs = self.logs / f"pool-{len(self.pools)}"
            self.pools[key] = ByPreload(
                lambda n: local_executor(course, self.JOBS, unsafe=unsafe, logs=logs / str(n)),
                self.JOBS,
            )
        return self.pools[key]

    def close(self) -> None:
        """End every worker; the next call starts new ones."""
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()


class ByPreload:
    """An executor that hands each job to the workers of its preload, started on first use."""

    def __init__(self, start, jobs: int):
        self.start, self.jobs, self.executors = start, jobs, {}

    def submit(self, job):
        if job.preload not in self.executors:
            self.executors[job.preload] = self.start(len(self.executors))
        return self.executors[job.preload].submit(job)

    def close(self) -> None:
        for executor in self.executors.values():
            executor.close()


@pytest.fixture(scope="session")
def workers(tmp_path_factory):
    """SharedWorkers of this pytest process, ended with it."""
    shared = SharedWorkers(tmp_path_factory.mktemp("shared-workers"))
    yield shared
    shared.close()
