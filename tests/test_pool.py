"""The grading worker pool's failure modes (grader/execution/pool.py, executors.py), with a
fake worker that speaks the worker's JSON-lines protocol and fails on request; and the
protocol itself (grader/execution/protocol.py). No notebook runs: each test is a few short
processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import Future
from pathlib import Path

import psutil
import pytest

from grader.execution.executors import LocalExecutor
from grader.execution.pool import WorkerSlot
from grader.execution.protocol import (
    EXECUTION_STATUSES,
    ExecutionResult,
    Job,
    ProtocolError,
    Score,
)
from grader.workdir.status import STATUSES

# What the notebook's file name asks of the fake worker; any other name is graded.
FAKE_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    for line in sys.stdin:
        name = os.path.basename(json.loads(line)["notebook"])
        if name == "dies.ipynb":
            print("fake worker: killed by the submission", file=sys.stderr, flush=True)
            sys.stdout.write('{"status": "gra')
            sys.stdout.flush()
            os._exit(3)
        elif name == "garbage.ipynb":
            sys.stdout.write("Segmentation fault? not JSON\\n")
        elif name == "forged.ipynb":
            sys.stdout.write(json.dumps({"status": "graded", "scores": {"q": [9e9, "a lot"]}}))
            sys.stdout.write("\\n")
        elif name == "silent.ipynb":
            time.sleep(60)
        else:
            answer = {
                "status": "graded",
                "message": str(os.getpid()),
                "scores": {"test_q": [2, 2], "essay": [None, 3]},
            }
            sys.stdout.write(json.dumps(answer) + "\\n")
        sys.stdout.flush()
    """
)
COMMAND = [sys.executable, "-c", FAKE_WORKER]
GRADED = {"test_q": Score(2.0, 2.0), "essay": Score(None, 3.0)}


def job(name: str, notebook_timeout: int = 30) -> Job:
    return Job(
        Path("/nowhere", f"{name}.ipynb"), cell_timeout=10, notebook_timeout=notebook_timeout
    )


@pytest.fixture
def slot(tmp_path):
    slot = WorkerSlot(COMMAND, {}, tmp_path / "worker.log", grace_s=0.3)
    yield slot
    slot.close()


def graded_by(result: ExecutionResult) -> int:
    """The pid of the fake worker that graded the job."""
    assert result.status == "graded", result
    assert result.scores == GRADED
    return int(result.message)


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid)


def test_a_healthy_worker_grades_job_after_job(slot):
    first = graded_by(slot.run(job("ada")))
    assert graded_by(slot.run(job("bob"))) == first  # one worker for both: started once


def test_a_worker_that_dies_mid_job_is_a_crash_and_is_replaced(slot):
    before = graded_by(slot.run(job("ada")))
    result = slot.run(job("dies"))
    assert result == ExecutionResult(
        "crashed", "the grading worker failed: fake worker: killed by the submission"
    )
    after = graded_by(slot.run(job("bob")))
    assert after != before and gone(before)


def test_a_worker_that_answers_garbage_is_a_crash_and_is_replaced(slot):
    before = graded_by(slot.run(job("ada")))
    result = slot.run(job("garbage"))
    assert result.status == "crashed" and not result.scores
    assert "not a result" in result.message and "not JSON" in result.message
    after = graded_by(slot.run(job("bob")))
    assert after != before and gone(before)


def test_a_result_with_malformed_scores_gives_no_points(slot):
    result = slot.run(job("forged"))
    assert result.status == "crashed" and not result.scores
    assert "'q' is not [points, max points]" in result.message
    graded_by(slot.run(job("bob")))


def test_a_worker_that_never_answers_times_out_and_is_replaced(slot):
    before = graded_by(slot.run(job("ada")))
    result = slot.run(job("silent", notebook_timeout=0))  # then the grace period, 0.3 s
    assert result == ExecutionResult(
        "timeout", "the notebook ran longer than 0 s and was stopped", seconds=0.3
    )
    assert gone(before)
    graded_by(slot.run(job("bob")))


def test_a_worker_that_cannot_start_is_a_crash(tmp_path):
    slot = WorkerSlot(
        [sys.executable, "-c", "import sys; sys.exit('no such config')"], {}, tmp_path / "w.log"
    )
    assert slot.run(job("ada")) == ExecutionResult.crashed(
        "the grading worker failed: no such config"
    )


def test_the_local_executor_answers_every_job(tmp_path):
    names = ["ada", "dies", "bob", "garbage", "cy", "forged", "dan", "dies", "eve"]
    executor = LocalExecutor(COMMAND, {}, tmp_path / "logs", jobs=2)
    try:
        futures = [executor.submit(job(name)) for name in names]
        results = [future.result(timeout=30) for future in futures]
    finally:
        executor.close()
    assert [(name, result.status) for name, result in zip(names, results, strict=True)] == [
        (name, "graded" if name in ("ada", "bob", "cy", "dan", "eve") else "crashed")
        for name in names
    ]
    assert all(result.scores == GRADED for result in results if result.status == "graded")
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "worker-0.log",
        "worker-1.log",
    ]


def test_a_dask_workers_slots_follow_the_preload(monkeypatch):
    """On a Dask worker (executors.grade_remotely), a grading worker serves jobs of one
    preload, since its kernel template keeps its first job's: another preload gets a worker
    of its own, and the idle ones of the old preload end."""
    from grader.execution import executors

    monkeypatch.setattr(executors, "_slots", {})
    monkeypatch.setattr(executors, "worker_command", lambda *args, **kwargs: COMMAND)

    def worker_for(preload: tuple[str, ...]) -> int:
        """The pid of the (fake) grading worker that graded a job of this preload."""
        answer, _ = executors.grade_remotely(
            {"a/a.ipynb": b"{}"}, "a/a.ipynb", b"", {}, 30, 60, False, 1.0, preload
        )
        return int(answer["message"])

    try:
        first = worker_for(("numpy",))
        assert worker_for(("numpy",)) == first  # one preload: the worker is kept
        second = worker_for(("numpy", "torch"))
        assert second != first
        assert gone(first), "the idle worker of the old preload still runs"
        assert worker_for(("numpy",)) not in (first, second)
        assert gone(second)
        assert len(executors._slots) == 1
    finally:
        for idle in executors._slots.values():
            for slot in executors._drain(idle):
                slot.close()


def test_a_busy_slot_of_a_retired_preload_ends_when_its_job_is_done(monkeypatch, tmp_path):
    from queue import Queue

    from grader.execution import executors

    monkeypatch.setattr(executors, "_slots", {})
    busy = WorkerSlot(COMMAND, {}, tmp_path / "worker.log")
    assert busy.run(job("ada")).status == "graded"
    pid = busy.process.pid
    executors._give_back(("course", ("numpy",)), Queue(), busy)  # a key no longer in _slots
    assert busy.process is None and gone(pid)


class CallersExecutor:
    """An executor autograde is given: every job ends as `crashed` at once; what it saw."""

    jobs = 2

    def __init__(self):
        self.notebooks: list[Path] = []
        self.closed = False

    def submit(self, job: Job) -> Future[ExecutionResult]:
        self.notebooks.append(job.notebook)
        future: Future[ExecutionResult] = Future()
        future.set_result(ExecutionResult.crashed("the caller's executor"))
        return future

    def close(self) -> None:
        self.closed = True


def test_autograde_runs_on_the_callers_executor_and_leaves_it_open(copied_grading, tmp_path):
    from conftest import MINI

    from grader.pipeline.autograde import autograde
    from grader.workdir import folder

    release = copied_grading.root / "release" / MINI / f"{MINI}.ipynb"
    for student in ("ada", "bob", "cy"):
        folder.submit(copied_grading, student, MINI, release)
    executor = CallersExecutor()
    outcomes = autograde(copied_grading, progress=False, unsafe=True, executor=executor)
    assert sorted((o.student, o.status) for o in outcomes) == [
        ("ada", "crashed"),
        ("bob", "crashed"),
        ("cy", "crashed"),
    ]
    assert "the caller's executor" in outcomes[0].message
    assert len(executor.notebooks) == 3 and not executor.closed


# --- the protocol ------------------------------------------------------------------------


def test_results_and_jobs_survive_the_round_trip():
    result = ExecutionResult("timeout", "cell 3 ran longer than 10 s", GRADED, 12.5)
    assert ExecutionResult.from_line(result.to_line()) == result
    assert json.loads(result.to_line())["scores"] == {"test_q": [2.0, 2.0], "essay": [None, 3.0]}
    assert Job.from_line(job("ada").to_line()) == job("ada")


def test_every_execution_status_is_a_stored_status():
    assert set(EXECUTION_STATUSES) <= set(STATUSES)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "[]",
        '{"status": "passed"}',
        '{"status": "graded", "message": 3}',
        '{"status": "graded", "scores": []}',
        '{"status": "graded", "scores": {"q": [1]}}',
        '{"status": "graded", "scores": {"q": [true, 1]}}',
        '{"status": "graded", "scores": {"q": [NaN, 1]}}',
        '{"status": "graded", "scores": {"q": [1, null]}}',
        '{"status": "graded", "seconds": -1}',
        '{"status": "graded", "seconds": "3"}',
        '{"status": "graded", "seconds": Infinity}',
        "[" * 100_000,
    ],
)
def test_a_result_must_be_one(line):
    with pytest.raises(ProtocolError):
        ExecutionResult.from_line(line)


def test_passed_means_points():
    result = ExecutionResult(
        "graded", scores={"a": Score(1.0, 1.0), "b": Score(0.0, 1.0), "c": Score(None, 2.0)}
    )
    assert [result.passed(g) for g in ("a", "b", "c", "missing")] == [True, False, False, False]


def test_the_main_process_never_imports_the_worker():
    code = (  # set up first, as the command line is
        "import sys; from grader.process import setup_process; setup_process(); "
        "import grader.pipeline.autograde; print('grader.execution.worker' in sys.modules)"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert answer.stdout.strip() == "False"
