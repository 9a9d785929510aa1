"""The demo class end to end on a tiny two-exercise course: collect, autograde in
parallel, feedback and reports, with every student's score worked out by hand.

The tiny course: exercise 1.1 `square` (2 points, one hidden test), 1.2 `cube` (1 point).
"""

from __future__ import annotations

import csv
import zipfile

import pytest
from conftest import DEMO_CELL_TIMEOUT, MINI, copy_grading
from nbgrader_reference import nbgrader_autograde

from grader.pipeline.bundle import make_bundle
from grader.pipeline.report import gather
from grader.workdir import folder, gradebook

# student -> (points of test_square, points of test_cube, status)
EXPECTED = {
    "ada": (2, 1, "graded"),
    "blank": (0, 0, "graded"),
    "gus": (2, 1, "graded"),  # warns on stderr inside the tests: full marks
    "hal": (2, 1, "graded"),  # the later of two submissions counts
    "ivy": (0, 1, "timeout"),  # `square`'s cell loops: stopped, so square is undefined
    "jon": (2, 0, "graded"),  # syntax error in `cube`'s cell
    "kim": (0, 0, "invalid"),  # not JSON
    "leo": (2, 0, "crashed"),  # kernel dies in `cube`'s cell: keeps square's points
}
PARTLY_RIGHT = ["cat", "dan", "eve", "fay"]  # one of the two exercises wrong


@pytest.fixture(scope="module")
def demo(graded_demo):
    """(tiny course, its graded demo folder, the report of it); the folder is the run's shared
    one (conftest.py's graded_demo): read it, never change it."""
    return graded_demo.repo, graded_demo.course, gather(graded_demo.course)


@pytest.mark.slow
def test_every_student_scores_as_worked_out(demo):
    _, _, report = demo
    assert report.students == sorted([*EXPECTED, *PARTLY_RIGHT])  # max's file was misnamed
    for student, (square, cube, status) in EXPECTED.items():
        got = (
            report.points[student, MINI, "test_square"],
            report.points[student, MINI, "test_cube"],
            report.statuses[student, MINI][0],
        )
        assert got == (square, cube, status), student
    for student in PARTLY_RIGHT:
        assert 0 < report.total(student) < 3, student


@pytest.mark.slow
def test_csv_files_hold_the_worked_out_scores(demo):
    _, course, _ = demo
    reports = course.root / "reports"
    with open(reports / "totals.csv") as f:
        totals = {row["student"]: row for row in csv.DictReader(f)}
    for student, (square, cube, _) in EXPECTED.items():
        assert float(totals[student][MINI]) == square + cube
        assert float(totals[student]["total"]) == square + cube
        assert float(totals[student]["max"]) == 3
    with open(reports / "questions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(totals)
    leo = {
        r["grade_id"]: (float(r["points"]), float(r["max_points"]))
        for r in rows
        if r["student"] == "leo"
    }
    assert leo == {"test_square": (2, 2), "test_cube": (0, 1)}
    with open(reports / "submissions.csv") as f:
        statuses = {r["student"]: r for r in csv.DictReader(f)}
    ivy = statuses["ivy"]
    assert ivy["status"] == "timeout" and f"{DEMO_CELL_TIMEOUT} s" in ivy["message"]
    assert statuses["kim"]["status"] == "invalid" and "JSON" in statuses["kim"]["message"]
    assert statuses["leo"]["status"] == "crashed" and "kernel died" in statuses["leo"]["message"]
    assert (reports / "scores.png").stat().st_size > 10_000


@pytest.mark.slow
def test_feedback_shows_results_but_never_hidden_tests(demo):
    _, course, _ = demo
    pages = sorted((course.root / "feedback").rglob("*.html"))
    assert len(pages) == len(EXPECTED) + len(PARTLY_RIGHT) - 1  # kim's notebook is unreadable
    for page in pages:
        text = page.read_text()
        assert "square(-2) == 4" not in text and "HIDDEN TESTS" not in text, page
        assert "test_square" in text
    blank = (course.root / "feedback" / "blank" / MINI / f"{MINI}.html").read_text()
    assert "NotImplementedError" in blank


@pytest.mark.slow
def test_autograding_again_changes_nothing(demo, tmp_path):
    from grader.pipeline.autograde import autograde

    repo, shared, _ = demo
    course = copy_grading(repo, shared.root, tmp_path / "grading")
    before = sorted(gradebook.grades(course))
    assert autograde(course, progress=False) == []  # everything is graded already
    assert sorted(gradebook.grades(course)) == before


def test_bundle_holds_release_and_course_but_no_answers(repo_course, tmp_path):
    path = make_bundle(repo_course, tmp_path / "bundle.zip")
    names = zipfile.ZipFile(path).namelist()
    top = "intro-to-deep-learning/"
    assert f"{top}release/{MINI}/{MINI}.ipynb" in names
    assert f"{top}course/__init__.py" in names
    assert f"{top}README.md" in names and f"{top}environment.yml" in names
    for forbidden in ("source/", "solutions/", "grader/", "tests/"):
        assert not any(n.startswith(top + forbidden) for n in names), forbidden


@pytest.mark.slow
def test_scores_equal_plain_sequential_nbgrader(demo, tmp_path):
    """Same class, graded by nbgrader's own Autograde one at a time: the same scores.

    (Not for leo, whose kernel dies: nbgrader keeps no points there, the grader keeps the
    points earned before, on purpose.)"""
    from nbgrader.converters.base import NbGraderException

    repo, course, _ = demo
    plain = folder.prepare(repo, tmp_path / "plain")
    from grader.pipeline.collect import collect

    collect(plain, course.root / "class.zip")
    # One student of each kind that nbgrader can grade (nbgrader is slow: ~3 s each).
    sample = ["ada", "blank", "cat", "gus", "ivy", "jon", "kim"]
    for student in sample:
        try:
            nbgrader_autograde(plain, MINI, student, cell_timeout=DEMO_CELL_TIMEOUT)
        except NbGraderException:
            assert student == "kim"  # nbgrader gives up on a notebook that is not JSON
    ours = {
        (g.student, g.grade_id): g.points for g in gradebook.grades(course) if g.student in sample
    }
    theirs = {(g.student, g.grade_id): g.points for g in gradebook.grades(plain)}
    differ = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    assert not differ, differ
    assert len(ours) == 2 * len(sample)
