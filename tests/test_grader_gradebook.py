"""Grading a tiny class with nbgrader: the full answer gets every point, the stub none."""

from __future__ import annotations

from conftest import MINI

from grader import gradebook
from grader.build import build
from grader.demo import points_table


def test_source_gets_every_point_and_release_none(mini_course, tmp_path):
    build(mini_course, solutions=False)
    course = gradebook.prepare(mini_course, tmp_path / "grading")
    gradebook.submit(course, "full", MINI, mini_course.root / "source" / MINI / f"{MINI}.ipynb")
    gradebook.submit(course, "stub", MINI, mini_course.root / "release" / MINI / f"{MINI}.ipynb")
    gradebook.autograde(course, MINI, "full")
    gradebook.autograde(course, MINI, "stub")
    points = {(g.student, g.grade_id): (g.points, g.max_points) for g in gradebook.grades(course)}
    assert points[("full", "test_square")] == (2.0, 2.0)
    assert points[("stub", "test_square")] == (0.0, 2.0)


def test_hidden_tests_are_restored_when_grading(mini_course, tmp_path):
    """A submission that passes the visible test only loses the hidden test's points."""
    build(mini_course, solutions=False)
    course = gradebook.prepare(mini_course, tmp_path / "grading")
    release = mini_course.root / "release" / MINI / f"{MINI}.ipynb"
    text = release.read_text().replace(
        "# YOUR CODE HERE\\n", "return 9 if x == 3 else 0\\n"
    )
    cheat = tmp_path / "cheat.ipynb"
    cheat.write_text(text)
    gradebook.submit(course, "cheat", MINI, cheat)
    gradebook.autograde(course, MINI, "cheat")
    [grade] = gradebook.grades(course)
    assert grade.points == 0.0


def test_points_table():
    rows = [
        gradebook.Grade("ann", "a1", "t1", 1, 2),
        gradebook.Grade("ann", "a1", "t2", 2, 2),
        gradebook.Grade("bob", "a1", "t1", 0, 2),
        gradebook.Grade("bob", "a1", "t2", 0, 2),
    ]
    lines = points_table(rows, ["a1"]).splitlines()
    assert lines[0].split() == ["student", "a1", "total"]
    assert lines[2].split() == ["ann", "3", "/", "4", "3", "/", "4"]
    assert lines[3].split() == ["bob", "0", "/", "4", "0", "/", "4"]
