"""Grading a tiny class with plain nbgrader: the full answer gets every point, the stub
none, and the hidden tests come back when grading."""

from __future__ import annotations

from conftest import MINI

from grader.pipeline.build import build
from grader.workdir import gradebook


def test_source_gets_every_point_release_none_and_hidden_tests_count(mini_course, tmp_path):
    build(mini_course, solutions=False)
    course = gradebook.prepare(mini_course, tmp_path / "grading")
    source = mini_course.root / "source" / MINI / f"{MINI}.ipynb"
    release = mini_course.root / "release" / MINI / f"{MINI}.ipynb"
    # passes the visible test only: the hidden test, restored from the gradebook, fails it
    cheat = tmp_path / "cheat.ipynb"
    cheat.write_text(
        release.read_text().replace("# YOUR CODE HERE\\n", "return 9 if x == 3 else 0\\n")
    )
    for student, notebook in [("full", source), ("stub", release), ("cheat", cheat)]:
        gradebook.submit(course, student, MINI, notebook)
        gradebook.autograde(course, MINI, student)
    points = {(g.student, g.grade_id): (g.points, g.max_points) for g in gradebook.grades(course)}
    assert points == {
        ("full", "test_square"): (2.0, 2.0),
        ("stub", "test_square"): (0.0, 2.0),
        ("cheat", "test_square"): (0.0, 2.0),
    }
