"""Long-lived grading workers, one per job slot, fed one submission at a time.

Each slot runs `python -m grader.execution.worker` and talks to it in JSON lines over its stdin and
stdout: a job (the sanitized notebook and the timeouts) in, a result (status, message,
scores) out. A worker serves many submissions, so its start-up (nbgrader, nbclient: about
2 s of CPU) is paid once per slot, not once per submission. The worker never touches the
gradebook; the same protocol could run over ssh on another machine.

A worker that stops answering (past the notebook timeout and a grace period) is killed
with everything it started and replaced by a fresh one; one that dies is replaced too.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

# Past the worker's own notebook timeout, the time it may take to stop the kernel and report.
GRACE_S = 60


class WorkerSlot:
    """One worker process, started on first use and restarted when it dies."""

    def __init__(
        self, config_file: Path, env: dict[str, str], log: Path, *, sandbox: bool, cpus: float
    ):
        """`sandbox`: False runs kernels unsandboxed (--unsafe); `cpus`: each kernel's CPU
        share in cores."""
        self.config_file = config_file
        self.env = env
        self.log = log
        self.sandbox_args = ["--cpus", str(cpus)] if sandbox else ["--unsafe"]
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as log:
            # stderr (the worker's and its kernels') goes to a log file: a pipe nobody
            # reads would fill up and block the kernel.
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "grader.execution.worker",
                    "--config",
                    str(self.config_file),
                    *self.sandbox_args,
                ],
                env=self.env,
                start_new_session=True,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )

    def run(self, notebook: Path, cell_timeout: int, notebook_timeout: int) -> dict:
        """Execute and score one sanitized notebook; the result as the worker reports it."""
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        job = {
            "notebook": str(notebook),
            "cell_timeout": cell_timeout,
            "notebook_timeout": notebook_timeout,
        }
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return self._crashed()
        ready, _, _ = select.select([self.process.stdout], [], [], notebook_timeout + GRACE_S)
        if not ready:
            self._kill()
            return {
                "status": "timeout",
                "scores": {},
                "message": f"the notebook ran longer than {notebook_timeout} s and was stopped",
            }
        line = self.process.stdout.readline()
        if not line:
            return self._crashed()
        return json.loads(line)

    def _crashed(self) -> dict:
        self._kill()
        lines = _tail(self.log).strip().splitlines()
        return {
            "status": "crashed",
            "scores": {},
            "message": f"the grading worker failed: {(lines or ['no message'])[-1]}",
        }

    def _kill(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None

    def close(self) -> None:
        """Let the worker finish: end of input makes it exit."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=GRACE_S)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            pass
        self._kill()


def _tail(path: Path, size: int = 4096) -> str:
    """The end of a log that kernels' stderr may have made large."""
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode(errors="replace")
