"""Grading round-trip for every assignment.

The source notebook handed in as a student's work gets every point of every graded
cell from the grader (sandboxed, with the canaries and the perturbed twin of every test
cell: a twin that an honest solution passes would make it `invalid`), with nothing to
note; the untouched release notebook gets zero on every graded cell from the grader,
and grading it finishes without error. Both are graded once for the whole run, in
conftest.py's graded_reference, which other tests read too.
"""

from __future__ import annotations

import pytest
from conftest import REFERENCE, UNTOUCHED

from grader.config import REPO_ROOT, load_config
from grader.notebooks import cells as nbs
from grader.notebooks.validate import source_assignments
from grader.workdir import gradebook
from grader.workdir.status import read_status

COURSE = load_config(REPO_ROOT)


@pytest.mark.slow
@pytest.mark.sandbox  # graded_reference grades sandboxed
@pytest.mark.parametrize("assignment", source_assignments(COURSE))
def test_source_gets_every_point_and_release_none(assignment, graded_reference):
    course = graded_reference  # graded once for the run: conftest.py
    notebook = f"{assignment}/{assignment}.ipynb"
    outcome = read_status(course, REFERENCE, assignment)
    assert outcome is not None, f"the reference solution of {assignment} was not graded"
    assert (outcome.status, outcome.message) == ("graded", ""), (
        f"the reference solution of {assignment}: {outcome.status}: {outcome.message}"
    )
    grades = [g for g in gradebook.grades(course) if g.assignment == assignment]
    reference = {
        g.grade_id: (g.points, g.max_points)
        for g in grades
        if g.student == REFERENCE and not g.pending
    }
    untouched = read_status(course, UNTOUCHED, assignment)
    assert untouched is not None and untouched.status == "graded", (
        f"the untouched release of {assignment}: {untouched}"
    )
    blank = {g.grade_id: g.points for g in grades if g.student == UNTOUCHED}
    assert reference, f"{assignment} has no graded cells"
    # Written answers (the model answer, handed in) wait for a person's grade: all of them,
    # and nothing else. Left as the release has them, they score 0 like the rest.
    pending = {g.grade_id for g in grades if g.student == REFERENCE and g.pending}
    source = nbs.read(REPO_ROOT / "source" / notebook)
    written = {nbs.nbgrader_meta(c)["grade_id"] for c in source.cells if nbs.is_written_answer(c)}
    assert pending == written, f"{assignment}: pending {pending}, written answers {written}"
    lost = {k: v for k, v in reference.items() if v[0] != v[1]}
    assert not lost, f"the reference solution of {assignment} loses points in {lost}"
    passing = {k: v for k, v in blank.items() if v != 0}
    assert not passing, f"test cells of {assignment} pass on the untouched stub: {passing}"
    assert set(blank) == set(reference) | written
