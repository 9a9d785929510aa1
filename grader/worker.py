"""Execute and score sanitized submissions: the part of autograding that runs student code.

    python -m grader.worker --config nbgrader_config.py [--cpus N | --unsafe]

reads one job per line on stdin, {"notebook": PATH, "cell_timeout": S,
"notebook_timeout": S}, and answers each with one line on stdout, {"status": ...,
"message": ..., "scores": {grade id: [points, max points]}} (see grader.pool).

Each kernel runs in a grader.sandbox (bubblewrap: an empty file system but for what
Python and the course need, no network, a cleared environment, limits) unless --unsafe.
Each notebook is executed in place, in its own folder, with nbgrader's Execute
preprocessor (per-cell timeout, errors recorded, execution goes on), then cleaned by the
same preprocessors nbgrader's autograde runs after executing. The worker never touches
the gradebook: it writes the executed notebook and answers with the status, a message
and the score of every graded cell, and the grader's main process saves the grades. A
notebook that runs past its wall time or kills its kernel keeps the outputs of the cells
that ran; graded cells that never ran get an error output, so they score 0.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import os
import signal
import sys
import threading
from pathlib import Path

import nbformat
import psutil
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import Execute, IgnorePattern, LimitOutput
from nbgrader.utils import determine_grade, is_grade

from grader.course_config import load_config
from grader.sandbox import Limits, Sandbox, SandboxError
from grader.tamper import Tampered, canaries, is_test_cell

NOT_RUN = "NotRun"
OUTPUT_LIMIT = 10 << 20  # characters of output kept per notebook; errors are always kept
KEPT_OUTPUTS = ("stream", "display_data", "execute_result", "update_display_data")


def kill_children() -> None:
    """Kill every process this worker started (the kernel and whatever it spawned)."""
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass


class TrackingExecute(Execute):
    """nbgrader's Execute, remembering which cells ran to the end, running the tamper
    canaries (grader.tamper) before each test cell, and keeping at most OUTPUT_LIMIT
    characters of output (a submission printing gigabytes would fill the worker's memory).
    """

    def preprocess(self, nb, resources=None, km=None):
        self.completed = set()
        self.canaries = canaries(nb)
        self.output_size = 0
        self.output_cut: int | None = None  # index of the cell where output was dropped
        self.cut_streams: set[tuple[int, str]] = set()
        self.running: int | None = None  # index of the cell last sent to the kernel
        return super().preprocess(nb, resources, km)

    async def on_cell_execute(self, cell, cell_index):
        self.running = cell_index
        if not is_test_cell(cell):
            return
        for code in self.canaries:
            msg_id = await ensure_async(
                self.kc.execute(code, store_history=False, stop_on_error=False)
            )
            reply = await self.async_wait_for_reply(msg_id, cell)
            if reply is None or reply["content"]["status"] != "error":
                raise Tampered(
                    f"the notebook disarmed the tests' checks: `{code}` no longer fails "
                    f"(checked before test cell {cell_index + 1}); tests from there score 0"
                )

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        self.output_size += len(str(content.get("text", ""))) + sum(
            len(str(value)) for value in content.get("data", {}).values()
        )
        if self.output_size > OUTPUT_LIMIT and msg["msg_type"] in KEPT_OUTPUTS:
            if self.output_cut is None:
                self.output_cut = cell_index
            # One marker per cell and stream, on the stream that was cut: nbgrader scores
            # a test cell with stderr 0, so dropped stderr must still show as stderr, and
            # dropped stdout must not turn into stderr.
            stream = content.get("name", "stdout")
            if (cell_index, stream) not in self.cut_streams:
                self.cut_streams.add((cell_index, stream))
                outs.append(nbformat.v4.new_output("stream", name=stream, text=(
                    f"\n[the grader dropped the rest of the output: more than "
                    f"{OUTPUT_LIMIT >> 20} MB]\n")))
            return None
        return super().output(outs, msg, display_id, cell_index)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        self.completed.add(kwargs["cell_index"])


def mark_not_run(nb, reason: str, completed: set[int] | None = None) -> None:
    """Give every graded cell that did not run to the end an error, so nbgrader scores it 0.

    A cell that was running when its kernel died has an execution count and maybe some
    output, but no error: without this nbgrader would give it full points.
    """
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not is_grade(cell):
            continue
        if completed is not None and index in completed:
            continue
        error = nbformat.v4.new_output(
            "error", ename=NOT_RUN, evalue=reason, traceback=[f"{NOT_RUN}: {reason}"]
        )
        cell.outputs = [*cell.get("outputs", []), error]


def errors_named(nb, ename: str) -> list[int]:
    """1-based numbers of the cells with an error output of that name."""
    return [
        index + 1
        for index, cell in enumerate(nb.cells)
        if any(output.get("output_type") == "error" and output.get("ename") == ename
               for output in cell.get("outputs", []))
    ]


def cell_timeouts(nb) -> list[int]:
    """1-based numbers of the cells nbclient stopped for running past the per-cell timeout."""
    return errors_named(nb, "CellTimeoutError")


def scores(nb) -> dict[str, list[float]]:
    """grade id -> [points, max points], as nbgrader will score the cells."""
    out = {}
    for cell in nb.cells:
        if is_grade(cell):
            points, max_points = determine_grade(cell)
            out[cell.metadata.nbgrader["grade_id"]] = [points or 0.0, max_points]
    return out


def execute_and_score(
    path: Path, config, cell_timeout: int, notebook_timeout: int, sandbox: Sandbox | None = None
) -> dict:
    nb = nbformat.read(str(path), as_version=4)
    config = copy.deepcopy(config)
    # Through the config: Execute.preprocess re-reads it and would undo an attribute.
    config.Execute.timeout = cell_timeout
    executor = TrackingExecute(config=config)
    executor.completed, executor.output_cut, executor.running = set(), None, None
    fired = threading.Event()

    def out_of_time():
        fired.set()
        kill_children()

    timer = threading.Timer(notebook_timeout, out_of_time)
    status, message = "graded", ""
    timer.start()
    try:
        cwd, km = path.parent, None
        if sandbox is not None:
            cwd = sandbox.prepare(path.parent)
            km = sandbox.kernel_manager(nb.metadata.get("kernelspec", {}).get("name", "python3"))
        executor.preprocess(nb, {"metadata": {"path": str(cwd)}}, km=km)
    except Tampered as error:
        status, message = "invalid", str(error)
    except DeadKernelError:
        if fired.is_set():
            status = "timeout"
            message = f"the notebook ran longer than {notebook_timeout} s and was stopped"
        else:
            status = "crashed"
            message = "the kernel died (the code exited the interpreter or crashed it)"
    except CellTimeoutError:
        # nbclient gave up on a cell: no reply, or no output after the reply, in time (a
        # fork bomb leaves its kernel no processes to answer with). A timeout, not a crash;
        # and its message quotes the cell, maybe a test with hidden tests, which
        # mark_not_run would copy into the outputs that the feedback shows.
        status = "timeout"
        cell = "a cell" if executor.running is None else f"cell {executor.running + 1}"
        message = f"{cell} timed out and the kernel stopped answering; it was stopped"
    except Exception as error:  # anything else nbclient raises is a crash of this submission
        status = "crashed"
        first_line = (str(error).splitlines() or [""])[0]  # never quote a cell (see above)
        message = f"execution failed: {type(error).__name__}: {first_line}"
    finally:
        timer.cancel()
        kill_children()
        if sandbox is not None:
            sandbox.clean()
    if status == "graded" and cell_timeouts(nb):
        status = "timeout"
        cells = ", ".join(str(i) for i in cell_timeouts(nb))
        message = f"cell {cells} ran longer than {cell_timeout} s and was stopped"
    if status != "graded":
        mark_not_run(nb, message, executor.completed)
    elif executor.output_cut is not None:
        message = (f"cell {executor.output_cut + 1} printed more than {OUTPUT_LIMIT >> 20} MB "
                   "in all; the rest of the output was dropped")
    elif errors_named(nb, "MemoryError"):
        cells = ", ".join(str(i) for i in errors_named(nb, "MemoryError"))
        limit = f" (limit {sandbox.limits.memory >> 30} GiB)" if sandbox else ""
        message = f"cell {cells} ran out of memory{limit}"
    for preprocessor in (IgnorePattern, ClearMetadataPreprocessor, LimitOutput):
        nb, _ = preprocessor(config=config)(nb, {})
    nbformat.write(nb, str(path))
    return {"status": status, "message": message, "scores": scores(nb)}


def die_with_parent() -> None:
    """Ask Linux to kill this worker when the grader dies, even by SIGKILL: a worker
    left behind would go on grading into a folder that a new run is using."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the grader cleans up on a normal exit
        pass


def serve(config, jobs, answers, sandbox: Sandbox | None) -> None:
    for line in jobs:
        job = json.loads(line)
        try:
            result = execute_and_score(
                Path(job["notebook"]), config, job["cell_timeout"], job["notebook_timeout"],
                sandbox,
            )
        except SandboxError as error:
            # Something of the sandbox outlived it: report, and end this worker loudly (its
            # log says why) rather than grade the next submission beside the leftovers.
            answers.write(json.dumps({"status": "crashed", "scores": {},
                                      "message": f"grading failed: {error}"}) + "\n")
            answers.flush()
            raise
        except Exception as error:  # this submission is lost, not the worker
            result = {"status": "crashed", "scores": {},
                      "message": f"grading failed: {type(error).__name__}: {error}"}
        answers.write(json.dumps(result) + "\n")
        answers.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="nbgrader_config.py")
    parser.add_argument("--cpus", type=float, default=1.0,
                        help="CPU share of each kernel, in cores (enforced with cgroups)")
    parser.add_argument("--unsafe", action="store_true", help="run kernels without a sandbox")
    args = parser.parse_args(argv)
    die_with_parent()
    sandbox = None
    if not args.unsafe:
        sandbox = Sandbox(Limits(cpus=args.cpus))
    config = load_config(args.config.parent).config
    # Answers go to a private copy of stdout; fd 1 itself, which kernels inherit, goes to
    # /dev/null, so nothing a submission prints can corrupt the answers.
    answers = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    serve(config, sys.stdin, answers, sandbox)
    return 0


if __name__ == "__main__":
    sys.exit(main())
