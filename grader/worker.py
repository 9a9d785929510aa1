"""Execute and score one sanitized submission: the part of autograding that runs student code.

    python -m grader.worker NOTEBOOK RESULT_JSON --cell-timeout S --notebook-timeout S

The notebook is executed in place, in its own folder, with nbgrader's Execute
preprocessor (per-cell timeout, errors recorded, execution goes on), then cleaned by the
same preprocessors nbgrader's autograde runs after executing. The worker never touches
the gradebook: it writes the executed notebook and a JSON line with the status, a message
and the score of every graded cell, and the grader's main process saves the grades. A
notebook that runs past its wall time or kills its kernel keeps the outputs of the cells
that ran; graded cells that never ran get an error output, so they score 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import threading
from pathlib import Path

import nbformat
import psutil
from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import Execute, IgnorePattern, LimitOutput
from nbgrader.utils import determine_grade, is_grade

from grader.course_config import load_config

NOT_RUN = "NotRun"


def kill_children() -> None:
    """Kill every process this worker started (the kernel and whatever it spawned)."""
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass


class TrackingExecute(Execute):
    """nbgrader's Execute, remembering which cells ran to the end."""

    def preprocess(self, nb, resources=None, km=None):
        self.completed = set()
        return super().preprocess(nb, resources, km)

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


def cell_timeouts(nb) -> list[int]:
    """1-based numbers of the cells nbclient stopped for running past the per-cell timeout."""
    return [
        index + 1
        for index, cell in enumerate(nb.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error" and output.get("ename") == "CellTimeoutError"
    ]


def scores(nb) -> dict[str, list[float]]:
    """grade id -> [points, max points], as nbgrader will score the cells."""
    out = {}
    for cell in nb.cells:
        if is_grade(cell):
            points, max_points = determine_grade(cell)
            out[cell.metadata.nbgrader["grade_id"]] = [points or 0.0, max_points]
    return out


def execute_and_score(path: Path, config, cell_timeout: int, notebook_timeout: int) -> dict:
    nb = nbformat.read(str(path), as_version=4)
    config = copy.deepcopy(config)
    # Through the config: Execute.preprocess re-reads it and would undo an attribute.
    config.Execute.timeout = cell_timeout
    executor = TrackingExecute(config=config)
    executor.completed = set()
    fired = threading.Event()

    def out_of_time():
        fired.set()
        kill_children()

    timer = threading.Timer(notebook_timeout, out_of_time)
    status, message = "graded", ""
    timer.start()
    try:
        executor.preprocess(nb, {"metadata": {"path": str(path.parent)}})
    except DeadKernelError:
        if fired.is_set():
            status = "timeout"
            message = f"the notebook ran longer than {notebook_timeout} s and was stopped"
        else:
            status = "crashed"
            message = "the kernel died (the code exited the interpreter or crashed it)"
    except Exception as error:  # anything else nbclient raises is a crash of this submission
        status = "crashed"
        message = f"execution failed: {type(error).__name__}: {error}"
    finally:
        timer.cancel()
        kill_children()
    if status == "graded" and cell_timeouts(nb):
        status = "timeout"
        cells = ", ".join(str(i) for i in cell_timeouts(nb))
        message = f"cell {cells} ran longer than {cell_timeout} s and was stopped"
    if status != "graded":
        mark_not_run(nb, message, executor.completed)
    for preprocessor in (IgnorePattern, ClearMetadataPreprocessor, LimitOutput):
        nb, _ = preprocessor(config=config)(nb, {})
    nbformat.write(nb, str(path))
    return {"status": status, "message": message, "scores": scores(nb)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--notebook-timeout", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True, help="nbgrader_config.py")
    args = parser.parse_args(argv)
    config = load_config(args.config.parent).config
    result = execute_and_score(args.notebook, config, args.cell_timeout, args.notebook_timeout)
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
