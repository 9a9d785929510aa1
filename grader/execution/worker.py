"""Execute and score sanitized submissions: the part of autograding that runs student code.

    python -m grader.execution.worker --config nbgrader_config.py [--cpus N | --unsafe]

reads one job per line on stdin, {"notebook": PATH, "cell_timeout": S,
"notebook_timeout": S, "preload": [LIBRARY, ...]}, and answers each with one line on
stdout, {"status": ..., "message": ..., "scores": {grade id: [points, max points]}}
(grader.execution.protocol's Job and ExecutionResult; grader.execution.pool is the other
end).

Each kernel runs in a grader.execution.sandbox (bubblewrap: an empty file system but for what
Python and the course need, no network, a cleared environment, limits) unless --unsafe,
forked from the worker's template process that has imported the course's libraries once:
those the first job's "preload" names (all it may import if the job does not say), since a
kernel imports what its template lacks itself (grader.execution.template_kernel;
GRADER_KERNEL_TEMPLATE=0 turns it off).
Each notebook is executed in place, in its own folder, with nbgrader's Execute
preprocessor (per-cell timeout, errors recorded, execution goes on), then cleaned by the
same preprocessors nbgrader's autograde runs after executing. The worker never touches
the gradebook: it writes the executed notebook and answers with the status, a message
and the score of every graded cell, and the grader's main process saves the grades. A
notebook that runs past its wall time or kills its kernel keeps the outputs of the cells
that ran; graded cells that never ran get an error output, so they score 0.

Scores come from what the worker observed, never from what the kernel printed: a test
cell scores its points when it ran to its end without an error (the kernel's reply says
ok, no error output, nothing on stderr but the configured noise), and 0 otherwise; a
result it displays is no partial credit (grader.notebooks.scoring's `settle` makes the
notebook say the same to nbgrader). Before each test cell grader.execution.tamper's canaries
run, and each test cell runs a second time as a perturbed twin that must fail. Every message
the kernel sends counts towards OUTPUT_LIMIT, and no widget state is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import Execute, IgnorePattern, LimitOutput

from grader.config import load_config
from grader.execution.kernel_client import PromptKernelClient
from grader.execution.lifeline import die_with_parent
from grader.execution.protocol import ExecutionResult, ExecutionStatus, Job, Score
from grader.execution.sandbox import Limits, Sandbox, SandboxError
from grader.execution.tamper import Checks, Tampered, disarmed, snapshot_code, twin_cell
from grader.execution.template_kernel import TemplateSandbox, TemplateUnavailable
from grader.execution.template_kernel import enabled as template_enabled
from grader.notebooks.scoring import (
    cell_timeouts,
    errors_named,
    is_test_cell,
    mark_not_run,
    scores,
    settle,
)
from grader.process import setup_process

# Characters of kernel messages (outputs, comm messages, display updates, ...) kept per
# notebook; past it only the first error of a cell and the idle status are.
OUTPUT_LIMIT = 10 << 20


def kill_children(spare: set[int] | frozenset[int] = frozenset()) -> None:
    """Kill every process this worker started (the kernel and whatever it spawned) but
    those in `spare` (the kernel template's)."""
    for child in psutil.Process().children(recursive=True):
        if child.pid in spare:
            continue
        with contextlib.suppress(psutil.Error):
            child.kill()


class TrackingExecute(Execute):
    """nbgrader's Execute, recording which cells ran to their end and which of them without
    an error, running grader.execution.tamper's canaries before each test cell and its perturbed
    twin
    beside it, and keeping at most OUTPUT_LIMIT characters of what the kernel sends (a
    submission printing gigabytes would fill the worker's memory).
    """

    # nbclient's NotebookClient's, declared again: mypy sees nbgrader's Execute as Any.
    _display_id_map: dict[str, Any]

    def preprocess(self, nb, resources=None, km=None):
        self.completed = set()  # cells that ran to their end
        self.passed = {}  # cell index -> ran to its end without an error (test cells)
        self.checks = Checks(nb)
        self.rng = random.SystemRandom()  # out of the kernel's reach
        self.twin = None  # the twin cell while it runs
        self.twin_failed = False
        self.output_size = 0
        self.output_cut: int | None = None  # index of the cell where output was dropped
        self.cut_streams: set[tuple[int, str]] = set()
        self.running: int | None = None  # index of the cell last sent to the kernel
        return super().preprocess(nb, resources, km)

    def create_kernel_manager(self):
        """The kernel manager nbclient makes where it is given none (--unsafe): with the
        client that a sandbox's kernel manager gets too (grader.execution.kernel_client)."""
        km = super().create_kernel_manager()
        km.client_factory = PromptKernelClient
        return km

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if not is_test_cell(cell):
            return await super().async_execute_cell(
                cell, cell_index, execution_count, store_history
            )
        await self._canaries(cell, cell_index)
        twin = self.checks.twin(cell.source, self.rng)
        if twin is None:  # nothing in the cell can be changed to fail for sure
            return await super().async_execute_cell(
                cell, cell_index, execution_count, store_history
            )
        # The real run and the twin, in random order, each from the same state (variables,
        # random generators); afterwards the state the real run left.
        self.twin, self.twin_failed = twin_cell(cell, twin), False
        name = f"_{secrets.token_hex(8)}"
        real_first = self.rng.random() < 0.5
        try:
            await self._quietly(f"{snapshot_code(name)}{name}('save', 'before')", cell)
            for turn, run in enumerate([cell, self.twin] if real_first else [self.twin, cell]):
                if turn:
                    await self._quietly(
                        f"{name}('save', 'first')\n{name}('restore', 'before')", cell
                    )
                displays = copy.deepcopy(self._display_id_map)
                await super().async_execute_cell(run, cell_index, execution_count, store_history)
                if run is self.twin:  # what the twin displayed is nobody's
                    self._display_id_map = displays
            await self._quietly(
                (f"{name}('restore', 'first')\n" if real_first else "") + f"del {name}", cell
            )
        except BaseException:
            # The kernel died or ran out of time during the pair: the real run's result
            # must not count, or a kernel that dies in the twin would keep it unchecked.
            self.completed.discard(cell_index)
            self.passed.pop(cell_index, None)
            raise
        finally:
            self.nb.cells[cell_index] = cell
            self.twin = None
        if self.passed.get(cell_index) and not self.twin_failed:
            raise Tampered(
                f"the notebook's checks pass even when a test's expected value is changed: "
                f"assertion helpers or the cell runner were replaced (test cell "
                f"{cell_index + 1}, {cell.metadata.nbgrader['grade_id']}, passed with its "
                f"check on line {twin.line} changed); tests score 0"
            )
        return cell

    async def _quietly(self, code: str, cell) -> dict | None:
        """Run grader code in the kernel: no output, no history; its errors are ignored."""
        msg_id = await ensure_async(
            self.kc.execute(code, silent=True, store_history=False, stop_on_error=False)
        )
        return await self.async_wait_for_reply(msg_id, cell)

    async def _canaries(self, cell, cell_index):
        msg_id = await ensure_async(
            self.kc.execute(self.checks.canary_block, store_history=False, stop_on_error=False)
        )
        reply = await self.async_wait_for_reply(msg_id, cell)
        content = (reply or {}).get("content", {})
        what = disarmed(
            self.checks.canaries,
            str(content.get("ename")) if content.get("status") == "error" else None,
            str(content.get("evalue")),
        )
        if what is None:
            return
        raise Tampered(
            f"the notebook disarmed the tests' checks: {what} (checked before "
            f"test cell {cell_index + 1}); tests score 0"
        )

    async def on_cell_execute(self, cell, cell_index):
        self.running = cell_index

    def process_message(self, msg, cell, cell_index):
        """Count every message of the cell (comm messages, display updates and clears too);
        past the limit, drop all but the idle status and a first error."""
        msg_type = msg.get("msg_type")
        if msg_type != "status":
            self.output_size += message_size(msg)
        if self.output_size > OUTPUT_LIMIT and msg_type not in ("status", "stream"):
            if self.output_cut is None:
                self.output_cut = cell_index
            if msg_type != "error" or any(o.output_type == "error" for o in cell.outputs):
                return None
        return super().process_message(msg, cell, cell_index)

    def output(self, outs, msg, display_id, cell_index):
        if self.output_size > OUTPUT_LIMIT and msg["msg_type"] == "stream":
            if self.output_cut is None:
                self.output_cut = cell_index
            # One marker per cell and stream, on the stream that was cut: a test cell with
            # stderr scores 0, so dropped stderr must still show as stderr, and dropped stdout
            # must not turn into stderr.
            stream = str(msg.get("content", {}).get("name", "stdout"))
            stream = stream if stream in ("stdout", "stderr") else "stdout"
            if (id(outs), stream) not in self.cut_streams:
                self.cut_streams.add((id(outs), stream))
                outs.append(
                    nbformat.v4.new_output(
                        "stream",
                        name=stream,
                        text=(
                            f"\n[the grader dropped the rest of the output: more than "
                            f"{OUTPUT_LIMIT >> 20} MB]\n"
                        ),
                    )
                )
            return None
        return super().output(outs, msg, display_id, cell_index)

    def handle_comm_msg(self, outs, msg, cell_index):
        """No widgets: their state stays out of the notebook, and no Output widget takes a
        cell's outputs (or errors) away from it."""

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        cell, index = kwargs["cell"], kwargs["cell_index"]
        reply = (kwargs.get("execute_reply") or {}).get("content", {})
        ok = reply.get("status") == "ok" and not any(
            output.get("output_type") == "error" for output in cell.outputs
        )
        if cell is self.twin:
            self.twin_failed = not ok
            return
        self.completed.add(index)
        self.passed[index] = ok

    # nbclient's sync wrapper calls the base class's coroutine, not an override.
    execute_cell = run_sync(async_execute_cell)


def message_size(msg) -> int:
    """Characters of a kernel message's content, and bytes of its binary buffers."""
    try:
        size = len(json.dumps(msg.get("content"), default=str))
    except (TypeError, ValueError, RecursionError):
        size = OUTPUT_LIMIT
    return size + sum(len(buffer) for buffer in msg.get("buffers") or [])


def execute_and_score(
    path: Path, config, cell_timeout: int, notebook_timeout: int, sandbox: Sandbox | None = None
) -> ExecutionResult:
    nb = nbformat.read(str(path), as_version=4)
    config = copy.deepcopy(config)
    # Through the config: Execute.preprocess re-reads it and would undo an attribute.
    config.Execute.timeout = cell_timeout
    config.Execute.store_widget_state = False
    config.Execute.record_timing = False
    executor = TrackingExecute(config=config)
    executor.completed, executor.passed = set(), {}
    executor.output_cut, executor.running = None, None
    fired = threading.Event()

    def spare() -> set[int]:  # asked when killing: the template may have been replaced
        return sandbox.lasting_pids() if sandbox is not None else set()

    def out_of_time():
        fired.set()
        kill_children(spare())

    timer = threading.Timer(notebook_timeout, out_of_time)
    status: ExecutionStatus = "graded"
    message = ""
    timer.start()
    try:
        _execute(executor, nb, path, sandbox)
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
        kill_children(spare())
        if sandbox is not None:
            sandbox.clean()
    if status == "graded" and cell_timeouts(nb):
        status = "timeout"
        cells = ", ".join(str(i) for i in cell_timeouts(nb))
        message = f"cell {cells} ran longer than {cell_timeout} s and was stopped"
    if status != "graded":  # a tampered notebook's scores cannot be trusted: none count
        mark_not_run(nb, message, set() if status == "invalid" else executor.completed)
    elif executor.output_cut is not None:
        message = (
            f"cell {executor.output_cut + 1} sent more than {OUTPUT_LIMIT >> 20} MB of "
            "output in all; the rest of the output was dropped"
        )
    elif errors_named(nb, "MemoryError"):
        cells = ", ".join(str(i) for i in errors_named(nb, "MemoryError"))
        limit = f" (limit {sandbox.limits.memory >> 30} GiB)" if sandbox else ""
        message = f"cell {cells} ran out of memory{limit}"
    for preprocessor in (IgnorePattern, ClearMetadataPreprocessor, LimitOutput):
        nb, _ = preprocessor(config=config)(nb, {})
    notes = settle(nb, lambda index, cell: executor.passed.get(index, False))
    nbformat.write(nb, str(path))
    message = "; ".join(filter(None, [message, *notes]))
    return ExecutionResult(
        status,
        message,
        {
            grade_id: Score(points, float(max_points or 0))
            for grade_id, (points, max_points) in scores(nb).items()
        },
    )


def _execute(executor: TrackingExecute, nb, path: Path, sandbox: Sandbox | None) -> None:
    """Execute `nb` (in place) in a fresh kernel, sandboxed unless `sandbox` is None. A
    kernel the template failed to start is started again (nothing of the submission ran);
    the template is replaced, and given up after a few failures."""
    kernel_name = nb.metadata.get("kernelspec", {}).get("name", "python3")
    while True:
        cwd, km = path.parent, None
        if sandbox is not None:
            cwd, km = sandbox.start(path.parent, kernel_name)
            km.client_factory = PromptKernelClient
        try:
            executor.preprocess(nb, {"metadata": {"path": str(cwd)}}, km=km)
            return
        except TemplateUnavailable as error:
            if not isinstance(sandbox, TemplateSandbox):  # only a template raises it
                raise
            sandbox.clean()
            sandbox.template_failed(error)
        finally:
            if km is not None:
                _release(executor, km)


def _release(executor: TrackingExecute, km) -> None:
    """Close what the worker holds of a sandboxed kernel, which the sandbox ends: its client's
    channels and its manager's sockets and zmq context. nbclient leaves both open for a
    kernel manager it was handed: a heartbeat thread pinging the dead kernel every second,
    and zmq's threads and sockets: five threads and about 18 descriptors more per
    submission, for the rest of the worker's life (until the garbage collector happens to
    close them)."""
    if executor.kc is not None:
        executor.kc.stop_channels()
        executor.kc = None
    run_sync(km.cleanup_resources)(restart=False)


def serve(config, jobs, answers, sandbox: Sandbox | None) -> None:
    """Answer each job line of `jobs` with a result line on `answers` (a job line that is not
    one is the grader's bug: the worker ends with it, and the pool reports the crash)."""
    for line in jobs:
        job = Job.from_line(line)
        if isinstance(sandbox, TemplateSandbox):
            sandbox.choose_preload(job.preload)
        start = time.monotonic()
        try:
            result = execute_and_score(
                job.notebook, config, job.cell_timeout, job.notebook_timeout, sandbox
            )
        except SandboxError as error:
            # Something of the sandbox outlived it: report, and end this worker loudly (its
            # log says why) rather than grade the next submission beside the leftovers.
            answers.write(ExecutionResult.crashed(f"grading failed: {error}").to_line())
            answers.flush()
            raise
        except Exception as error:  # this submission is lost, not the worker
            result = ExecutionResult.crashed(f"grading failed: {type(error).__name__}: {error}")
        result = dataclasses.replace(result, seconds=round(time.monotonic() - start, 3))
        answers.write(result.to_line())
        answers.flush()


def main(argv: list[str] | None = None) -> int:
    setup_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="nbgrader_config.py")
    parser.add_argument(
        "--cpus",
        type=float,
        default=1.0,
        help="CPU share of each kernel, in cores (enforced with cgroups)",
    )
    parser.add_argument("--unsafe", action="store_true", help="run kernels without a sandbox")
    args = parser.parse_args(argv)
    die_with_parent()
    sandbox = None
    if not args.unsafe:
        limits = Limits(cpus=args.cpus)
        sandbox = TemplateSandbox(limits) if template_enabled() else Sandbox(limits)
    config = load_config(args.config.parent).config
    # Answers go to a private copy of stdout; fd 1 itself, which kernels inherit, goes to
    # /dev/null, so nothing a submission prints can corrupt the answers.
    answers = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        serve(config, sys.stdin, answers, sandbox)
    finally:
        if sandbox is not None:
            sandbox.close()
    return 0


if __name__ == "__main__":
    # Too late here: this module's imports ran before main() could set the process up.
    sys.exit("start a grading worker with `python -m grader.execution` (pool.worker_command)")
