"""Grading round-trip for every assignment.

The source notebook handed in as a student's work gets every point of every graded
cell from the grader (sandboxed, with the canaries and the perturbed twin of every test
cell: a twin that an honest solution passes would make it `invalid`), with nothing to
note; the untouched release notebook gets zero on every graded cell from plain nbgrader,
and grading it finishes without error.
"""

from __future__ import annotations

import pytest

from grader.config import REPO_ROOT, load_config
from grader.notebooks import cells as nbs
from grader.notebooks.validate import source_assignments
from grader.pipeline.autograde import autograde
from grader.pipeline.synthetic import as_handed_in
from grader.workdir import gradebook

COURSE = load_config(REPO_ROOT)


@pytest.mark.parametrize("assignment", source_assignments(COURSE))
def test_source_gets_every_point_and_release_none(assignment, tmp_path):
    course = gradebook.prepare(COURSE, tmp_path, [assignment])
    notebook = f"{assignment}/{assignment}.ipynb"
    # The reference solution as a student hands it in: no delimiters, no hidden tests.
    handed_in = tmp_path / "reference.ipynb"
    nbs.write(as_handed_in(nbs.read(REPO_ROOT / "source" / notebook)), handed_in)
    gradebook.submit(course, "reference", assignment, handed_in)
    [outcome] = autograde(course, [assignment], jobs=1, progress=False)
    assert (outcome.student, outcome.status, outcome.message) == ("reference", "graded", ""), (
        f"the reference solution of {assignment}: {outcome.status}: {outcome.message}"
    )
    gradebook.submit(course, "blank", assignment, REPO_ROOT / "release" / notebook)
    gradebook.autograde(course, assignment, "blank")
    grades = gradebook.grades(course)
    reference = {
        g.grade_id: (g.points, g.max_points)
        for g in grades
        if g.student == "reference" and not g.pending
    }
    blank = {g.grade_id: g.points for g in grades if g.student == "blank"}
    assert reference, f"{assignment} has no graded cells"
    # Written answers (the model answer, handed in) wait for a person's grade: all of them,
    # and nothing else. Left as the release has them, they score 0 like the rest.
    pending = {g.grade_id for g in grades if g.student == "reference" and g.pending}
    source = nbs.read(REPO_ROOT / "source" / notebook)
    written = {nbs.nbgrader_meta(c)["grade_id"] for c in source.cells if nbs.is_written_answer(c)}
    assert pending == written, f"{assignment}: pending {pending}, written answers {written}"
    lost = {k: v for k, v in reference.items() if v[0] != v[1]}
    assert not lost, f"the reference solution of {assignment} loses points in {lost}"
    passing = {k: v for k, v in blank.items() if v != 0}
    assert not passing, f"test cells of {assignment} pass on the untouched stub: {passing}"
    assert set(blank) == set(reference) | written
