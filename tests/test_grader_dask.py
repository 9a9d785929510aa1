"""Grading on a Dask cluster: a LocalCluster of 2 worker processes grades a class, its
gradebook on PostgreSQL, exactly as this machine's worker pool does on SQLite; a worker
killed mid-class loses nothing and counts nothing twice; a submission that kills every
worker it lands on ends `crashed`, and the rest is graded.

Workers are killed by a Dask worker plugin registered by the test (the way a machine
dies: the process is gone mid-task), not by anything in the grader.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from pathlib import Path

import cloudpickle
import dask
import nbformat
import pytest
from conftest import MINI, build_class_course
from distributed import Client, LocalCluster, WorkerPlugin

from grader.config import load_config
from grader.pipeline.autograde import autograde
from grader.pipeline.report import write_report
from grader.pipeline.synthetic import as_handed_in
from grader.workdir import folder, gradebook

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ALLOWED_FAILURES = 1


class KillWorker(WorkerPlugin):
    """Kill the worker process when a task grading `student` starts; only the first time
    if `once` (a marker file says it happened), else every time."""

    def __init__(self, student: str, marker: str | None = None):
        self.student, self.marker = student, marker

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or f"-{self.student}-" not in str(key):
            return
        if self.marker is not None:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        os._exit(1)


def make_class(tmp_path: Path, name: str, db: str | None = None):
    repo = build_class_course(tmp_path / f"course-{name}")
    course = folder.prepare(load_config(repo.root, db=db), tmp_path / f"grading-{name}")
    source = nbformat.read(str(repo.root / "source" / MINI / f"{MINI}.ipynb"), 4)
    right = as_handed_in(source)
    wrong = as_handed_in(source)
    for cell in wrong.cells:
        cell.source = cell.source.replace("return x ** 3", "return x * x")
    notebooks = {"ada": right, "blank": None, "cat": wrong, "dan": right, "kim": right}
    for student, nb in notebooks.items():
        path = tmp_path / f"{name}-{student}.ipynb"
        if nb is None:
            path.write_bytes((repo.root / "release" / MINI / f"{MINI}.ipynb").read_bytes())
        else:
            nbformat.write(nb, str(path))
        folder.submit(course, student, MINI, path)
    return course


def points(course) -> dict[str, float]:
    report, _ = write_report(course)
    return {s: report.total(s) for s in report.students}


@pytest.fixture(scope="module")
def cluster():
    # The plugins travel by value: by reference, each worker, and each one started again after
    # a kill, would import this module and with it conftest and the grader (2 s of CPU each).
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
    ):
        yield cluster
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_a_class_on_dask_scores_as_on_this_machine(tmp_path, cluster, postgres, workers):
    local = make_class(tmp_path, "local")
    # On shared workers (shared_workers.py): the scores to match do not depend on which.
    outcomes = autograde(local, cell_timeout=30, progress=False, executor=workers(local))
    assert Counter(o.status for o in outcomes) == {"graded": 5}

    remote = make_class(tmp_path, "dask", db=postgres.new_database())
    assert gradebook.db_url(remote).startswith("postgresql")
    with Client(cluster) as client:
        client.register_plugin(KillWorker("cat", marker=str(tmp_path / "cat-killed")))
        client.register_plugin(KillWorker("kim"), name="kill-kim")
        outcomes = autograde(
            remote, cluster=cluster.scheduler_address, cell_timeout=30, progress=False
        )
        client.unregister_worker_plugin("kill-kim")
    assert (tmp_path / "cat-killed").exists(), "the plugin should have killed a worker"
    by_student = {o.student: o for o in outcomes}
    assert sorted(by_student) == ["ada", "blank", "cat", "dan", "kim"]  # each once
    assert by_student["kim"].status == "crashed"
    assert "killed its Dask worker" in by_student["kim"].message
    expected = points(local)
    expected["kim"] = 0.0
    assert points(remote) == expected
    assert expected["ada"] == 3 and expected["cat"] == 2 and expected["blank"] == 0
    rows = Counter((g.student, g.grade_id) for g in gradebook.grades(remote))
    assert set(rows.values()) == {1}, "a grade recorded twice"
    # A second run grades nothing again: every outcome was recorded.
    assert autograde(remote, cluster=cluster.scheduler_address, progress=False) == []
