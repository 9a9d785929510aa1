"""Grading a tiny class with plain nbgrader: the full answer gets every point, the stub
none, and the hidden tests come back when grading."""

from __future__ import annotations

import pytest
from conftest import MINI, answered
from nbgrader_reference import nbgrader_autograde

from grader.notebooks import cells as nbs
from grader.pipeline.build import build
from grader.workdir import folder, gradebook

pytestmark = pytest.mark.slow

# The first line of the release's stub of `square` (nbgrader_config.py's ExerciseStubs.stub);
# `answered` fails if the release no longer has it, rather than hand in the stub as the cheat.
STUB = "# YOUR CODE HERE"


def test_source_gets_every_point_release_none_and_hidden_tests_count(mini_course, tmp_path):
    build(mini_course, solutions=False)
    course = folder.prepare(mini_course, tmp_path / "grading")
    source = mini_course.root / "source" / MINI / f"{MINI}.ipynb"
    release = mini_course.root / "release" / MINI / f"{MINI}.ipynb"
    # passes the visible test only: the hidden test, restored from the gradebook, fails it
    cheat = tmp_path / "cheat.ipynb"
    nbs.write(answered(nbs.read(release), "square", STUB, "return 9 if x == 3 else 0"), cheat)
    for student, notebook in [("full", source), ("stub", release), ("cheat", cheat)]:
        folder.submit(course, student, MINI, notebook)
        nbgrader_autograde(course, MINI, student)
    points = {(g.student, g.grade_id): (g.points, g.max_points) for g in gradebook.grades(course)}
    assert points == {
        ("full", "test_square"): (2.0, 2.0),
        ("stub", "test_square"): (0.0, 2.0),
        ("cheat", "test_square"): (0.0, 2.0),
    }
