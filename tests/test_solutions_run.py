"""Every cell of every solution notebook runs without an error, and the cells tagged
`nbval-check-output` print what solutions/ shows.

These are nbval's checks with `--nbval-lax`, made on the run's one execution of each real
notebook instead of a fresh one: conftest.py's graded_reference, in which the grader ran
each reference solution (the cells of solutions/, hidden tests added back) for the round
trip. `make test` used to execute every notebook three times (nbval, the round trip, the
template comparison); one execution read three ways keeps every guarantee: the cells of
solutions/ run to their end in a kernel (a sandboxed one, which sees less than a student's),
their pinned printouts hold, and the round trip gives full marks.
"""

from __future__ import annotations

import pytest
from conftest import REFERENCE
from nbgrader.utils import is_grade, is_solution

from grader.config import REPO_ROOT, load_config
from grader.notebooks import cells as nbs
from grader.notebooks.validate import source_assignments

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]  # graded_reference grades sandboxed

ASSIGNMENTS = source_assignments(load_config(REPO_ROOT))
CHECK_OUTPUT = "nbval-check-output"


def printed(cell) -> str:
    """What a cell wrote to stdout: the output a `nbval-check-output` tag pins. Figures'
    reprs and stderr (progress bars, off while grading) are not pinned."""
    return "".join(
        o.get("text", "")
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def executed(course, assignment):
    """(solutions/ notebook, the same notebook as the grader executed it), cell by cell."""
    committed = nbs.read(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    ran = nbs.read(course.root / "autograded" / REFERENCE / assignment / f"{assignment}.ipynb")
    assert [c.cell_type for c in ran.cells] == [c.cell_type for c in committed.cells], (
        f"{assignment}: the graded reference solution does not have the cells of solutions/"
    )
    return list(zip(committed.cells, ran.cells, strict=True))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_solution_cell_runs_without_an_error(assignment, graded_reference):
    pairs = executed(graded_reference, assignment)
    code = [(i, c, r) for i, (c, r) in enumerate(pairs) if c.cell_type == "code"]
    assert code, f"{assignment} has no code cell"
    for index, committed, ran in code:
        where = f"solutions/{assignment}, cell {index + 1}"
        # A test cell comes back with its hidden tests; every other cell is the student's.
        if not (is_grade(committed) and not is_solution(committed)):
            assert ran.source == committed.source, f"{where}: not the cell of solutions/"
        if not committed.source.strip():
            continue
        assert ran.get("execution_count"), f"{where} did not run"
        errors = [o for o in ran.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{where} fails: {errors[0].get('ename')}: {errors[0].get('evalue')}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_pinned_printouts_are_what_solutions_show(assignment, graded_reference):
    pinned = [
        (i, c, r)
        for i, (c, r) in enumerate(executed(graded_reference, assignment))
        if CHECK_OUTPUT in c.metadata.get("tags", [])
    ]
    for index, committed, ran in pinned:
        assert printed(committed), (
            f"solutions/{assignment}, cell {index + 1} is tagged {CHECK_OUTPUT} but prints "
            "nothing to compare"
        )
        assert printed(ran) == printed(committed), (
            f"solutions/{assignment}, cell {index + 1} prints something else than solutions/ "
            "shows; run `make build` if the change is meant"
        )
