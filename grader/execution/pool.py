"""Long-lived grading workers, one per job slot, fed one submission at a time.

Each slot runs a grading worker, `python -m grader.execution` (`worker_command`), and talks
to it in JSON lines over its stdin and stdout (grader.execution.protocol): a job (the
sanitized notebook and the timeouts) in, a result (status, message, scores) out. A worker
serves many submissions, so its start-up (nbgrader, nbclient: about 2 s of CPU) is paid once
per slot, not once per submission. The worker never touches the gradebook; the same protocol
could run over ssh on another machine.

A worker that stops answering (past the notebook timeout and a grace period) is killed
with everything it started and replaced by a fresh one for the next job; one that dies,
or answers something that is not a result, is replaced too. Either way the job's result
says so (`timeout`, `crashed`): a slot always answers.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from grader.execution.protocol import ExecutionResult, Job, ProtocolError

# Past the worker's own notebook timeout, the time it may take to stop the kernel and report.
GRACE_S = 60


def worker_command(config_file: Path, *, sandbox: bool, cpus: float) -> list[str]:
    """The grading worker's command line. `sandbox`: False runs kernels unsandboxed
    (--unsafe); `cpus`: each kernel's CPU share in cores."""
    return [
        sys.executable,
        "-m",
        "grader.execution",  # grader.execution.worker's main, in a process set up first
        "--config",
        str(config_file),
        *(["--cpus", str(cpus)] if sandbox else ["--unsafe"]),
    ]


class WorkerSlot:
    """One worker process, started on first use and restarted when it dies."""

    def __init__(
        self, command: list[str], env: dict[str, str], log: Path, *, grace_s: float = GRACE_S
    ):
        """`command`: the worker's command line (`worker_command`); its stderr goes to `log`.
        `grace_s`: how long past a job's notebook timeout the worker may take to answer."""
        self.command = command
        self.env = env
        self.log = log
        self.grace_s = grace_s
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as log:
            # stderr (the worker's and its kernels') goes to a log file: a pipe nobody
            # reads would fill up and block the kernel.
            return subprocess.Popen(
                self.command,
                env=self.env,
                start_new_session=True,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )

    def run(self, job: Job) -> ExecutionResult:
        """Execute and score one sanitized notebook; the result as the worker reports it,
        or as this slot saw the worker fail."""
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None  # noqa: S101 (_start makes both pipes)
        try:
            stdin.write(job.to_line())
            stdin.flush()
        except BrokenPipeError:
            return self._crashed()
        wait = job.notebook_timeout + self.grace_s
        ready, _, _ = select.select([stdout], [], [], wait)
        if not ready:
            self._kill()
            return ExecutionResult(
                "timeout",
                f"the notebook ran longer than {job.notebook_timeout} s and was stopped",
                seconds=float(wait),
            )
        line = stdout.readline()
        if not line.endswith("\n"):  # end of output, maybe amid a line: the worker died
            return self._crashed()
        try:
            return ExecutionResult.from_line(line)
        except ProtocolError as error:
            # Whatever the worker does next cannot be trusted to line up with the next job.
            self._kill()
            return ExecutionResult.crashed(
                f"the grading worker answered something that is not a result ({error})"
            )

    def _crashed(self) -> ExecutionResult:
        self._kill()
        lines = _tail(self.log).strip().splitlines()
        return ExecutionResult.crashed(
            f"the grading worker failed: {(lines or ['no message'])[-1]}"
        )

    def _kill(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def close(self) -> None:
        """Let the worker finish: end of input makes it exit."""
        if self.process is None:
            return
        with contextlib.suppress(BrokenPipeError, subprocess.TimeoutExpired):
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=self.grace_s)
        self._kill()


def _tail(path: Path, size: int = 4096) -> str:
    """The end of a log that kernels' stderr may have made large."""
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode(errors="replace")
