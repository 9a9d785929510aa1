"""Where sanitized submissions execute: this machine's worker pool, or a Dask cluster.

Both take a job, the folder that holds one sanitized notebook and the assignment's files,
and give a `concurrent.futures.Future` of the worker's result (status, message, scores),
with the executed notebook written back into that folder. autograde does the rest (the
gradebook, autograded/) the same way for both, in its main process.

- `LocalExecutor`: N long-lived `python -m grader.execution.worker` processes
  (grader.execution.pool), fed
  through N threads that only wait. The default: no scheduler to start, and measured no
  slower than a LocalCluster (README, "Grading on several machines").
- `DaskExecutor`: each job is a Dask task. What it needs travels with it (the notebook,
  the assignment's files, the course's nbgrader_config.py), so workers share no file
  system with the grader; a task runs the job in a grading worker of that Dask worker's
  own (grader.execution.pool again: same sandbox, same limits) and sends back the result and the
  executed notebook. A Dask worker that dies mid-task has its task run again elsewhere
  by the scheduler; one that dies `allowed-failures` times on the same submission ends it
  as `crashed`. Results are recorded once, by the grader's main process.
"""

from __future__ import annotations

import collections
import os
import queue
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from grader.errors import GraderError
from grader.execution.pool import WorkerSlot

NOTEBOOK_SUFFIX = ".ipynb"


class LocalExecutor:
    """`jobs` grading workers on this machine."""

    def __init__(
        self,
        config_file: Path,
        env: dict[str, str],
        logs: Path,
        jobs: int,
        *,
        sandbox: bool,
        cpus: float,
    ):
        self.jobs = jobs
        self.slots: queue.Queue[WorkerSlot] = queue.Queue()
        for number in range(jobs):
            self.slots.put(
                WorkerSlot(
                    config_file, env, logs / f"worker-{number}.log", sandbox=sandbox, cpus=cpus
                )
            )
        self.threads = ThreadPoolExecutor(max_workers=jobs)

    def submit(self, notebook: Path, cell_timeout: int, notebook_timeout: int) -> Future:
        return self.threads.submit(self._run, notebook, cell_timeout, notebook_timeout)

    def _run(self, notebook: Path, cell_timeout: int, notebook_timeout: int) -> dict:
        slot = self.slots.get()
        try:
            return slot.run(notebook, cell_timeout, notebook_timeout)
        finally:
            self.slots.put(slot)

    def close(self) -> None:
        # The idle workers first: each ends on its own (its kernel template stopped, every
        # process reaped by its parent). A worker dies with the thread that started it
        # (PR_SET_PDEATHSIG is per thread), so the threads end after them.
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

    def submit(self, notebook: Path, cell_timeout: int, notebook_timeout: int) -> Future:
        """Queue one job; at most one task per worker thread is on the cluster at a time."""
        done: Future = Future()
        with self._lock:
            self._pending.append((notebook, cell_timeout, notebook_timeout, done))
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

    def _send(self, job, alone: bool) -> None:
        notebook, cell_timeout, notebook_timeout, done = job
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
            cell_timeout,
            notebook_timeout,
            self.sandbox,
            self.cpus,
            pure=False,
            key=f"grade-{notebook.parent.parent.name}-{notebook.parent.name}-{os.urandom(4).hex()}",
        )
        task.add_done_callback(lambda task: self._finished(task, job, alone))

    def _finished(self, task, job, alone: bool) -> None:
        notebook, _, _, done = job
        try:
            result, executed = task.result()
        except Exception as error:
            if type(error).__name__ == "KilledWorker" and not alone:
                with self._lock:
                    self._in_flight -= 1
                    self._alone.append(job)
                    self._launch()
                return
            result, executed = _crashed_workers(error), None
        if executed is not None:
            notebook.write_bytes(executed)
        with self._lock:
            self._in_flight -= 1
            self._alone_running = self._alone_running and not alone
            self._launch()
        done.set_result(result)

    def close(self) -> None:
        self.client.close()


_PASSED_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MPLBACKEND",
    "PYTHONWARNINGS",
    "TQDM_DISABLE",
    "PYDEVD_DISABLE_FILE_VALIDATION",
    "GRADER_KERNEL_TEMPLATE",
)


def _crashed_workers(error: Exception) -> dict:
    name = type(error).__name__
    if name == "KilledWorker":
        message = (
            "grading this submission killed its Dask worker again and again, also "
            "when it ran alone on the cluster; it was not tried any more"
        )
    else:
        message = f"the cluster could not run this submission: {name}: {error}"
    return {"status": "crashed", "scores": {}, "message": message}


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
):
    """A Dask task: run one job in a grading worker of this Dask worker process; the
    worker's result and the executed notebook (None if there is none)."""
    key = (config, tuple(sorted(env.items())), sandbox, cpus)
    with _slots_lock:
        if key not in _slots:
            _slots[key] = queue.Queue()
    idle = _slots[key]
    try:
        slot = idle.get_nowait()
    except queue.Empty:
        home = Path(tempfile.mkdtemp(prefix="grader-dask-"))
        (home / "nbgrader_config.py").write_bytes(config)
        slot = WorkerSlot(
            home / "nbgrader_config.py",
            {**os.environ, **env},
            home / "worker.log",
            sandbox=sandbox,
            cpus=cpus,
        )
    with tempfile.TemporaryDirectory(prefix="grader-job-") as folder:
        for name, data in files.items():
            path = Path(folder, name)
            if Path(folder) not in path.resolve().parents:
                raise ValueError(f"a job's file name leaves its folder: {name!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        try:
            result = slot.run(Path(folder, notebook), cell_timeout, notebook_timeout)
        finally:
            idle.put(slot)
        executed = Path(folder, notebook)
        return result, executed.read_bytes() if executed.exists() else None
