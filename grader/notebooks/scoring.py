"""What an executed notebook's graded cells say, and making them say what the worker saw.

Pure notebook logic, shared by the grading worker (grader.execution.worker), which scores
the notebook it executed, and by autograde's main process (grader.pipeline.autograde),
which makes the notebook agree with the worker's scores before nbgrader saves them; so
the main process never imports the worker.
"""

from __future__ import annotations

from collections.abc import Callable

import nbformat
from nbformat import NotebookNode
from nbgrader.utils import determine_grade, is_grade, is_solution

NOT_RUN = "NotRun"
NOT_PASSED = "NotPassed"


def is_test_cell(cell: NotebookNode) -> bool:
    """A graded code cell that is not an answer: a test."""
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def mark_not_run(nb: NotebookNode, reason: str, completed: set[int] | None = None) -> None:
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


def errors_named(nb: NotebookNode, ename: str) -> list[int]:
    """1-based numbers of the cells with an error output of that name."""
    return [
        index + 1
        for index, cell in enumerate(nb.cells)
        if any(
            output.get("output_type") == "error" and output.get("ename") == ename
            for output in cell.get("outputs", [])
        )
    ]


def cell_timeouts(nb: NotebookNode) -> list[int]:
    """1-based numbers of the cells nbclient stopped for running past the per-cell timeout."""
    return errors_named(nb, "CellTimeoutError")


def settle(nb: NotebookNode, passed: Callable[[int, NotebookNode], bool]) -> list[str]:
    """Make each test cell's outputs tell nbgrader what the worker observed, and return
    notes on what the kernel claimed. `passed(index, cell)`: whether the cell ran to its end
    without an error. A displayed result (nbgrader reads a number as partial credit) becomes
    a plain display; a cell that did not pass but shows no error or stderr gets an error."""
    shown: list[str] = []  # grade ids of test cells that displayed a result
    above: list[str] = []  # ... a number above their points
    for index, cell in enumerate(nb.cells):
        if not is_test_cell(cell):
            continue
        grade_id = cell.metadata.nbgrader["grade_id"]
        for output in cell.get("outputs", []):
            if output.get("output_type") == "execute_result":
                number = _number(output)
                points = float(cell.metadata.nbgrader.get("points") or 0)
                (above if number is not None and number > points else shown).append(grade_id)
                output.output_type = "display_data"
                output.pop("execution_count", None)
                output.setdefault("metadata", {})
                output.setdefault("data", {})
        failed = any(
            o.get("output_type") == "error"
            or (o.get("output_type") == "stream" and o.get("name") == "stderr")
            for o in cell.outputs
        )
        if not failed and not passed(index, cell):
            reason = "the cell did not run to its end without an error"
            cell.outputs.append(
                nbformat.v4.new_output(
                    "error", ename=NOT_PASSED, evalue=reason, traceback=[f"{NOT_PASSED}: {reason}"]
                )
            )
    notes = []
    if above:
        notes.append(
            f"test cell(s) {', '.join(sorted(set(above)))} showed a score above their "
            "points (a forged result?); results are not scores: each test scores "
            "its points only if it ran without an error"
        )
    if shown:
        notes.append(
            f"test cell(s) {', '.join(sorted(set(shown)))} showed a result; results "
            "are not scores (no partial credit)"
        )
    return notes


def _number(output) -> float | None:
    text = output.get("data", {}).get("text/plain")
    if isinstance(text, list):
        text = "".join(map(str, text))
    try:
        return float(str(text)[:100])
    except ValueError:
        return None


def scores(nb: NotebookNode) -> dict[str, list[float | None]]:
    """grade id -> [points, max points], as nbgrader will score the cells: points None for
    an answer graded by hand (a written answer) that the student changed, which waits for a
    person's grade (nbgrader's determine_grade; left as the release had it, it scores 0)."""
    out = {}
    for cell in nb.cells:
        if is_grade(cell):
            points, max_points = determine_grade(cell)
            out[cell.metadata.nbgrader["grade_id"]] = [points, max_points]
    return out
