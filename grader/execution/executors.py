"""Where sanitized submissions execute: this machine's worker pool, or a Dask cluster.

Both take a `Job` (grader.execution.protocol): a sanitized notebook in a folder that holds
the assignment's files too, and its timeouts; and give a `concurrent.futures.Future` of its
`ExecutionResult` (status, message, scores), with the executed notebook written back into
that folder. autograde does the rest (the gradebook, autograded/) the same way for both, in
its main process.

- `LocalExecutor`: N long-lived `python -m grader.execution.worker` processes
  (grader.execution.pool), fed through N threads that only wait. The default: no scheduler
  to start, and measured no slower than a LocalCluster (README, "Grading on several
  machines").
- `DaskExecutor`: each job is a Dask task. What it needs travels with it (the notebook,
  the assignment's files, the course's nbgrader_config.py, the libraries its kernel
  template is to preload), so workers share no file system with the grader; a task runs
  the job in a grading worker of that Dask worker's own (grader.execution.pool again: same
  sandbox, same limits) and sends back the result (as JSON data) and the executed
  notebook. A Dask worker that dies mid-task has its task run again elsewhere by the
  scheduler; one that dies `allowed-failures` times on the same submission ends it as
  `crashed`. Results are recorded once, by the grader's main process.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from grader.errors import GraderError
from grader.execution.pool import WorkerSlot, worker_command
from grader.execution.protocol import ExecutionResult, Job, ProtocolError
from grader.execution.sandbox import ENVIRONMENT
from grader.execution.template_kernel import SWITCH


class Executor(Protocol):
    """What autograde hands jobs to: `jobs` of them run at once."""

    jobs: int

    def submit(self, job: Job) -> Future[ExecutionResult]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """`jobs` grading workers on this machine, each started with `command`
    (grader.execution.pool.worker_command), its stderr in logs/worker-N.log."""

    def __init__(self, command: list[str], env: dict[str, str], logs: Path, jobs: int):
        self.jobs = jobs
        self.slots: queue.Queue[WorkerSlot] = queue.Queue()
        for number in range(jobs):
            self.slots.put(WorkerSlot(command, env, logs / f"worker-{number}.log"))
        self.threads = ThreadPoolExecutor(max_workers=jobs)

    def submit(self, job: Job) -> Future[ExecutionResult]:
        return self.threads.submit(self._run, job)

    def _run(self, job: Job) -> ExecutionResult:
        slot = self.slots.get()
        try:
            return slot.run(job)
        finally:
            self.slots.put(slot)

    def close(self) -> None:
        # The idle workers first: each ends on its own (its kernel template stopped, every
        # process reaped by its parent). A worker dies with the thread that started it
        # (grader.execution.lifeline), so the threads end after them.
        while not self.slots.empty():
            self.slots.get().close()
        self.threads.shutdown()
        while not self.slots.empty():  # those that were busy
            self.slots.get().close()


class DaskExecutor:
    """Jobs as tasks on a Dask cluster (a scheduler address or a scheduler file)."""

    def __init__(
        self,
        config_file: Path,
        env: dict[str, str],
        *,
        address: str | None = None,
        scheduler_file: str | None = None,
        sandbox: bool,
        cpus: float,
    ):
        from distributed import Client

        self.client = Client(address, scheduler_file=scheduler_file, timeout="30s")
        self.config = config_file.read_bytes()
        # What the grading workers on the cluster's machines get from this one: the
        # course's settings (threads, quiet progress bars, the plotting backend).
        self.env = {k: v for k, v in env.items() if k in _PASSED_ENV}
        self.sandbox, self.cpus = sandbox, cpus
        if sandbox:  # every worker machine must be able to sandbox, as this one would
            lacking = {
                worker: missing
                for worker, missing in self.client.run(_missing_pieces).items()
                if missing
            }
            if lacking:
                worker, missing = next(iter(lacking.items()))
                self.client.close()
                raise GraderError(
                    f"{len(lacking)} Dask worker(s) cannot sandbox submissions, e.g. {worker}: "
                    f"it lacks {'; '.join(missing)}. Install it there, or pass --unsafe"
                )
        self.jobs = max(
            1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())
        )
        self._pending: collections.deque = collections.deque()
        self._alone: collections.deque = collections.deque()  # to be tried alone
        self._alone_running = False
        self._in_flight = 0
        self._lock = threading.RLock()

    @property
    def dashboard(self) -> str:
        return self.client.dashboard_link

    @property
    def address(self) -> str:
        """The scheduler's address."""
        scheduler = self.client.scheduler
        address = scheduler.address if scheduler is not None else None
        if address is None:  # Client() connects before it returns, or raises
            raise GraderError("the Dask client is not connected to a scheduler")
        return address

    def submit(self, job: Job) -> Future[ExecutionResult]:
        """Queue one job; at most one task per worker thread is on the cluster at a time."""
        done: Future[ExecutionResult] = Future()
        with self._lock:
            self._pending.append(_Queued(job, done))
            self._launch()
        return done

    def _launch(self) -> None:
        """Send queued jobs to the cluster. A job whose task the scheduler gave up on
        (its workers died `allowed-failures` times) may only have shared a worker with the
        submission that killed them: it is tried once more alone, with nothing else on
        the cluster, and only a death then makes it `crashed`."""
        if self._alone_running:
            return
        if self._alone:
            if self._in_flight == 0:
                self._alone_running = True
                self._send(self._alone.popleft(), alone=True)
            return
        while self._in_flight < self.jobs and self._pending:
            self._send(self._pending.popleft(), alone=False)

    def _send(self, queued: _Queued, alone: bool) -> None:
        notebook = queued.job.notebook
        self._in_flight += 1
        files = {
            str(p.relative_to(notebook.parent)): p.read_bytes()
            for p in sorted(notebook.parent.rglob("*"))
            if p.is_file()
        }
        task = self.client.submit(
            grade_remotely,
            files,
            notebook.name,
            self.config,
            self.env,
            queued.job.cell_timeout,
            queued.job.notebook_timeout,
            self.sandbox,
            self.cpus,
            queued.job.preload,
            pure=False,
            key=f"grade-{notebook.parent.parent.name}-{notebook.parent.name}-{os.urandom(4).hex()}",
        )
        task.add_done_callback(lambda task: self._finished(task, queued, alone))

    def _finished(self, task, queued: _Queued, alone: bool) -> None:
        try:
            answer, executed = task.result()
            result = ExecutionResult.from_json(answer)
        except ProtocolError as error:
            result, executed = ExecutionResult.crashed(f"the cluster's answer: {error}"), None
        except Exception as error:
            if type(error).__name__ == "KilledWorker" and not alone:
                with self._lock:
                    self._in_flight -= 1
                    self._alone.append(queued)
                    self._launch()
                return
            result, executed = _crashed_workers(error), None
        if executed is not None:
            queued.job.notebook.write_bytes(executed)
        with self._lock:
            self._in_flight -= 1
            self._alone_running = self._alone_running and not alone
            self._launch()
        queued.done.set_result(result)

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class _Queued:
    """A job waiting for the cluster, and the future of its result."""

    job: Job
    done: Future[ExecutionResult]


# What a remote worker's grading process gets of this one's environment: what reaches a
# kernel (the sandbox's list), and whether kernels are forked from a template.
_PASSED_ENV = (*ENVIRONMENT, SWITCH)


def _crashed_workers(error: Exception) -> ExecutionResult:
    name = type(error).__name__
    if name == "KilledWorker":
        message = (
            "grading this submission killed its Dask worker again and again, also "
            "when it ran alone on the cluster; it was not tried any more"
        )
    else:
        message = f"the cluster could not run this submission: {name}: {error}"
    return ExecutionResult.crashed(message)


# --- on a Dask worker -------------------------------------------------------------------


def _missing_pieces() -> list[str]:
    from grader.execution.sandbox import missing_pieces

    return missing_pieces()


_slots: dict[tuple, queue.Queue] = {}
_slots_lock = threading.Lock()


def grade_remotely(
    files: dict[str, bytes],
    notebook: str,
    config: bytes,
    env: dict[str, str],
    cell_timeout: int,
    notebook_timeout: int,
    sandbox: bool,
    cpus: float,
    preload: tuple[str, ...] | None = None,
):
    """A Dask task: run one job in a grading worker of this Dask worker process; the
    worker's result as a JSON object (ExecutionResult.to_json: what crosses to the grader is
    data, not this code's classes) and the executed notebook (None if there is none)."""
    # A grading worker's kernel template keeps the preload of its first job, and a Dask
    # worker outlives grading runs (each run asks for one preload): slots are kept per
    # preload, and those of another preload of the same course end when they are idle.
    course = (config, tuple(sorted(env.items())), sandbox, cpus)
    key = (*course, preload)
    stale: list[WorkerSlot] = []
    with _slots_lock:
        if key not in _slots:
            for other in [k for k in _slots if k[:-1] == course]:
                stale += _drain(_slots.pop(other))
            _slots[key] = queue.Queue()
        idle = _slots[key]
    for old in stale:
        old.close()
    try:
        slot = idle.get_nowait()
    except queue.Empty:
        home = Path(tempfile.mkdtemp(prefix="grader-dask-"))
        (home / "nbgrader_config.py").write_bytes(config)
        slot = WorkerSlot(
            worker_command(home / "nbgrader_config.py", sandbox=sandbox, cpus=cpus),
            {**os.environ, **env},
            home / "worker.log",
        )
    with tempfile.TemporaryDirectory(prefix="grader-job-") as folder:
        for name, data in files.items():
            path = Path(folder, name)
            if Path(folder) not in path.resolve().parents:
                raise ValueError(f"a job's file name leaves its folder: {name!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        job = Job(Path(folder, notebook), cell_timeout, notebook_timeout, preload)
        try:
            result = slot.run(job)
        finally:
            _give_back(key, idle, slot)
        executed = job.notebook
        return result.to_json(), executed.read_bytes() if executed.exists() else None


def _drain(idle: queue.Queue) -> list[WorkerSlot]:
    slots = []
    with contextlib.suppress(queue.Empty):
        while True:
            slots.append(idle.get_nowait())
    return slots


def _give_back(key: tuple, idle: queue.Queue, slot: WorkerSlot) -> None:
    """The slot back among the idle ones of its key; ended instead where a job of another
    preload has retired that key meanwhile."""
    with _slots_lock:
        if _slots.get(key) is idle:
            idle.put(slot)
            return
    slot.close()
